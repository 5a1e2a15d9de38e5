"""``forecast explore``: a local page over a fit held in memory (PRODUCT §9).

:mod:`~forecast.explore.session` answers what-ifs from the fit, :mod:`~forecast.explore.app`
serves them (Starlette), :mod:`~forecast.explore.server` runs it on the loopback address.
"""
