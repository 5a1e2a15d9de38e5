"""Snapshot every output of the bundled scenarios, to show a refactor changes nothing.

``uv run python scripts/snapshot.py OUT`` runs ``run``, ``sensitivity`` and ``backtest``
on both bundled scenarios and ``compare`` of their report folders into ``OUT/``, then
writes ``OUT/manifest.json``: one fingerprint per file, with what legitimately differs
between two runs taken out (the creation time, the run time, netCDF's own bytes).
``--against OLD/manifest.json`` compares and exits 1 naming every earlier file that
differs or is missing now (files that are new are listed, not failed). ``--no-run
--root CHECKOUT`` fingerprints an existing OUT written by another checkout.

Text files are fingerprinted with ``created`` timestamps, ``run time``, the checkout's
own path and the snapshot's folder blanked;
``posterior.nc`` by its groups' values and attributes (the provenance without
``created``, and without the ``created_at`` and ``sampling_time`` ArviZ stamps), since
netCDF bytes hold the write time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = [ROOT / "scenarios" / "commentary-2013.yaml", ROOT / "scenarios" / "diplomat-2011.yaml"]
_CREATED = re.compile(r'("created": ")[^"]*(")|(created )\S+?(\.|<)|(<th>created</th><td>)[^<]*')
_RUN_TIME = re.compile(r"(<th>run time</th><td>)[^<]*")


#: netCDF attributes ArviZ and PyMC stamp on every run (when, and how long, it sampled).
RUN_ATTRS = ("created_at", "sampling_time")


def _blank(text: str, root: Path, out: Path | None = None) -> str:
    text = _CREATED.sub(lambda m: "".join(g or "" for g in m.groups()), text)
    text = text.replace(str(root), "<root>")  # the checkout's path, in provenance
    if out is not None:
        text = text.replace(str(out), "<out>")  # where this snapshot was written
    return _RUN_TIME.sub(r"\1", text)


def _netcdf(path: Path, root: Path) -> str:
    import numpy as np
    import xarray as xr

    tree = xr.open_datatree(path, engine="h5netcdf")
    h = hashlib.sha256()
    for node in sorted(tree.subtree, key=lambda n: n.path):
        h.update(node.path.encode())
        attrs = {k: v for k, v in node.attrs.items() if k not in RUN_ATTRS}
        if "provenance" in attrs:
            prov = json.loads(attrs["provenance"])
            prov.pop("created", None)
            attrs["provenance"] = json.dumps(prov, sort_keys=True).replace(str(root), "<root>")
        h.update(json.dumps(attrs, sort_keys=True, default=str).encode())
        for name in sorted(node.ds.variables):
            var = node.ds[name]
            h.update(f"{name}{var.dims}{var.dtype}".encode())
            h.update(np.ascontiguousarray(var.values).tobytes())
    return h.hexdigest()


def fingerprint(path: Path, root: Path = ROOT, out: Path | None = None) -> str:
    if path.suffix == ".nc":
        return _netcdf(path, root)
    if path.suffix in (".json", ".md", ".html", ".yaml", ".csv", ".txt"):
        return hashlib.sha256(_blank(path.read_text(), root, out).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def forecast(*args: str | Path) -> None:
    cmd = ["forecast", *map(str, args)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=False, cwd=ROOT, stdout=subprocess.DEVNULL)


def produce(out: Path) -> None:
    forecast("run", *BUNDLED, "--out", out)
    for scenario in BUNDLED:
        forecast("sensitivity", scenario, "--out", out)
        forecast("backtest", scenario, "--out", out)
    forecast("compare", *(out / s.stem for s in BUNDLED), "--out", out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--against", type=Path, help="an earlier manifest.json to compare with")
    parser.add_argument("--no-run", action="store_true", help="fingerprint OUT as it is")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the checkout that wrote OUT (default this one)"
    )
    args = parser.parse_args(argv)
    if not args.no_run:
        produce(args.out)
    manifest = {
        str(p.relative_to(args.out)): fingerprint(p, args.root, args.out.resolve())
        for p in sorted(args.out.rglob("*"))
        if p.is_file() and p.name != "manifest.json" and not p.name.startswith(".")
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest)} files fingerprinted in {args.out / 'manifest.json'}")
    if args.against is None:
        return 0
    old = json.loads(args.against.read_text())
    differ = sorted(k for k in old if old[k] != manifest.get(k))
    for k in differ:
        print(f"differs: {k}" if k in manifest else f"missing now: {k}")
    for k in sorted(manifest.keys() - old.keys()):
        print(f"new: {k}")
    print("identical" if not differ else f"{len(differ)} of {len(old)} files differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
