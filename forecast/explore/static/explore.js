// forecast explore: each change to a belief asks the local process for P(success).
// Plain JS, no framework, nothing loaded from the network (the page's CSP forbids it).
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const token = document.querySelector('meta[name="forecast-token"]').content;
  const $ = (id) => document.getElementById(id);
  const DEBOUNCE_MS = 250;
  const POLL_MS = 1000;
  let seq = 0; // only the latest request's answer is shown
  let timer = null;
  let poll = null;
  let controller = null;
  let fileAnswer = null; // the answer with no changes, shown beside a changed one
  function status(message) {
    $("status").textContent = message;
    $("bar-status").textContent = message;
  }

  // ------------------------------------------------------------------ numbers

  // Decimal places a figure with this MCSE supports (forecast.mcse.decimals).
  function decimals(mcse, scale, most) {
    if (mcse === null || mcse === undefined || !(mcse > 0)) return most;
    const d = -Math.floor(Math.log10(2 * mcse * scale));
    return Math.min(Math.max(d, 0), most);
  }
  function pct(x, mcse) {
    if (x === null || x === undefined) return "—";
    return (100 * x).toFixed(decimals(mcse, 100, 2)) + "%";
  }
  function points(mcse) {
    if (mcse === null || mcse === undefined) return "—";
    return mcse === 0 ? "0" : Number((100 * mcse).toPrecision(2)).toString();
  }
  // A value as YAML scenario syntax (what --set takes).
  function yamlNumber(v) {
    return String(Number(v));
  }

  // ------------------------------------------------------------------ rows

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c) e.append(c);
    return e;
  }

  function initialForm(row) {
    const b = row.belief;
    if (row.kind === "word") return { form: "word", word: typeof b === "string" ? b : b.word };
    if (row.kind === "between") return { form: "range", lo: b.between[0], hi: b.between[1] };
    if (row.kind === "constant") return { form: "number", value: b };
    return { form: "file" };
  }

  function buildRow(row, i) {
    const id = `row-${i}`;
    const init = initialForm(row);
    const box = el("article", { class: "row", id, "data-path": row.set_path });
    box.append(el("h3", { text: row.label }));
    if (row.why) box.append(el("blockquote", { text: row.why }));
    if (row.note) box.append(el("p", { class: "note", text: (row.why ? "Note: " : "Analyst's note: ") + row.note }));
    const strength = row.strength === null || row.strength === undefined
      ? "" : ` · prior strength ${Number(row.strength).toPrecision(3)} reference rounds (a + b)`;
    box.append(el("p", { class: "detail",
      text: `In the file: ${row.belief_text} = ${row.distribution}${strength}` }));

    const form = el("select", { id: `${id}-form`, "aria-label": `${row.label}: how to write it` });
    const forms = [["file", "as in the file"]];
    if (row.words) forms.push(["word", "a word"]);
    forms.push(["range", "a range"], ["number", "a number"]);
    for (const [v, t] of forms) form.append(el("option", { value: v, text: t }));
    form.value = init.form;

    const word = el("select", { id: `${id}-word`, "aria-label": `${row.label}: word` });
    for (const [w, r] of Object.entries(row.words || {})) {
      word.append(el("option", { value: w, text: `${w} (${r[0]}–${r[1]})` }));
    }
    if (init.word) word.value = init.word;
    const step = row.role === "value" ? "any" : "0.01";
    const lo = el("input", { id: `${id}-lo`, type: "number", step, "aria-label": `${row.label}: low end` });
    const hi = el("input", { id: `${id}-hi`, type: "number", step, "aria-label": `${row.label}: high end` });
    const num = el("input", { id: `${id}-num`, type: "number", step, "aria-label": `${row.label}: number` });
    if (init.form === "range") { lo.value = init.lo; hi.value = init.hi; }
    if (init.form === "number") num.value = init.value;
    const controls = el("div", { class: "controls" }, form,
      el("span", { class: "part word" }, word),
      el("span", { class: "part range" }, lo, el("span", { text: " to " }), hi),
      el("span", { class: "part number" }, num));
    box.append(controls);
    const state = { row, init, box, form, word, lo, hi, num };

    function show() {
      box.dataset.form = form.value;
      const changed = valueOf(state) !== null;
      box.classList.toggle("changed", changed);
    }
    for (const c of [form, word, lo, hi, num]) {
      c.addEventListener("input", () => { show(); schedule(); });
      c.addEventListener("change", () => { show(); schedule(); });
    }
    state.show = show;
    show();
    return state;
  }

  // The --set value of a row, or null when it says what the file says.
  function text(state) {
    const f = state.form.value;
    if (f === "word") return state.word.value;
    if (f === "range") {
      if (state.lo.value === "" || state.hi.value === "") return null;
      return `{between: [${yamlNumber(state.lo.value)}, ${yamlNumber(state.hi.value)}]}`;
    }
    if (f === "number") return state.num.value === "" ? null : yamlNumber(state.num.value);
    return null;
  }
  function textOfInit(state) {
    const i = state.init;
    if (i.form === "word") return i.word;
    if (i.form === "range") return `{between: [${yamlNumber(i.lo)}, ${yamlNumber(i.hi)}]}`;
    if (i.form === "number") return yamlNumber(i.value);
    return null;
  }
  function valueOf(state) {
    const t = text(state);
    return t === null || t === textOfInit(state) ? null : t;
  }

  const rows = boot.rows.map(buildRow);
  const list = $("rows");
  for (const r of rows) list.append(r.box);

  function sets() {
    const out = [];
    for (const r of rows) {
      const v = valueOf(r);
      if (v !== null) out.push(`${r.row.set_path}=${v}`);
    }
    return out;
  }

  // ------------------------------------------------------------------ answers

  function quote(s) { // as a shell would need it (forecast.explore.session.set_line)
    return /^[\w@%+=:,./-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\"'\"'") + "'";
  }
  function setLine(list) {
    return list.length ? list.map((s) => "--set " + quote(s)).join(" ") : "(none: the file's beliefs)";
  }

  const METHOD = {
    exact: "exact forward sampling (no reference data)",
    reweighted: "reweighted from the fit (PSIS)",
    refit: "refitted with NUTS (the fit could not be reweighted to this change)",
  };

  function render(a) {
    const p = a.p_success;
    $("p-mean").textContent = pct(p.mean, p.mcse);
    const interval = p.hdi_90
      ? `90% ${a.interval === "hdi" ? "HDI" : "interval (weighted quantiles)"} ${pct(p.hdi_90[0], p.mcse)} – ${pct(p.hdi_90[1], p.mcse)}`
      : "90% interval: not kept for a refit";
    $("p-detail").textContent = `${interval} · MCSE ${points(p.mcse)} points`;
    let how = METHOD[a.method] || a.method;
    if (a.method === "reweighted") how += `, Pareto k ${a.pareto_k.toFixed(2)}, ESS ${a.ess}`;
    if (a.method === "refit" && a.note) how += ` (${a.note})`;
    $("method").textContent = `Method: ${how}.`;
    status(`updated in ${a.seconds < 0.01 ? "<0.01" : a.seconds} s` +
      (a.set.length ? "" : " · the file's beliefs"));
    $("bar-mean").textContent = `P(success) ${pct(p.mean, p.mcse)}`;
    if (a.set.length === 0) fileAnswer = a;
    const f = $("file-value");
    f.hidden = !(a.set.length && fileAnswer);
    if (fileAnswer) {
      const b = fileAnswer.p_success;
      f.textContent = `With the file's beliefs: ${pct(b.mean, b.mcse)} (MCSE ${points(b.mcse)} points).`;
    }
    renderDecision(a.decision);
    document.body.dataset.state = "done";
  }

  function renderDecision(d) {
    const box = $("decision");
    if (!d) { box.hidden = true; return; }
    box.hidden = false;
    box.replaceChildren(el("h3", { text: d.question || "Decision" }));
    const ul = el("ul");
    for (const o of d.options) {
      const best = o.name === d.recommended ? " — recommended" : "";
      const mean = o.mean === undefined ? "" : `: mean value ${o.mean} ± ${o.mcse}`;
      ul.append(el("li", { class: best ? "best" : "", text: `${o.label}${mean}${best}` }));
    }
    box.append(ul);
    if (d.options.every((o) => o.mean === undefined)) {
      box.append(el("p", { class: "detail", text: "Option values are shown for the file's beliefs; for a change, the recommendation." }));
    }
  }

  async function ask(list, mine) {
    if (controller) controller.abort();
    controller = new AbortController();
    const q = new URLSearchParams();
    for (const s of list) q.append("set", s);
    let res;
    try {
      res = await fetch("/api/forecast?" + q.toString(), { signal: controller.signal });
    } catch (e) {
      if (e.name !== "AbortError" && mine === seq) status("the forecast process does not answer");
      return;
    }
    const a = await res.json();
    if (mine !== seq) return; // a newer change has been asked since
    if (res.status === 400) {
      status(`not a valid change: ${a.error}`);
      document.body.dataset.state = "invalid";
      return;
    }
    if (!res.ok && res.status !== 202) {
      status(`error: ${a.error}`);
      document.body.dataset.state = "error";
      return;
    }
    if (a.status === "superseded") return; // a later change took its place
    if (a.status === "pending") {
      status(a.progress.message);
      if (a.method === "refit") $("method").textContent = "Method: refit with NUTS (in progress).";
      document.body.dataset.state = "pending";
      poll = setTimeout(() => ask(list, mine), POLL_MS);
      return;
    }
    render(a);
  }

  function schedule() {
    const list = sets();
    $("set-line").textContent = setLine(list);
    clearTimeout(timer);
    clearTimeout(poll);
    const mine = ++seq;
    document.body.dataset.state = "asking";
    status("computing…");
    timer = setTimeout(() => ask(list, mine), DEBOUNCE_MS);
  }

  $("reset").addEventListener("click", () => {
    for (const r of rows) {
      r.form.value = r.init.form;
      if (r.init.word) r.word.value = r.init.word;
      r.lo.value = r.init.form === "range" ? r.init.lo : "";
      r.hi.value = r.init.form === "range" ? r.init.hi : "";
      r.num.value = r.init.form === "number" ? r.init.value : "";
      r.show();
    }
    $("saved").textContent = "";
    schedule();
  });

  $("save").addEventListener("click", async () => {
    const list = sets();
    $("saved").textContent = "saving…";
    const res = await fetch("/api/save", {
      method: "POST",
      headers: { "content-type": "application/json", "x-forecast-token": token },
      body: JSON.stringify({ name: $("save-name").value, set: list }),
    });
    const a = await res.json();
    if (!res.ok) { $("saved").textContent = `not saved: ${a.error}`; return; }
    $("saved").textContent = `saved ${a.path}` + (a.set_line ? ` (= the file ${a.set_line})` : "");
    document.body.dataset.saved = a.path;
  });

  if (boot.author) {
    const a = boot.author;
    const belief = typeof a.belief === "string" ? a.belief : JSON.stringify(a.belief);
    $("author").hidden = false;
    $("author").textContent = `The author's own bottom line: ${belief} (mean ${pct(a.mean, a.mcse)}), reported beside the model, not an input to it.`;
  }
  schedule();
})();
