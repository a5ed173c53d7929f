"""Evaluation of samples against a reference simulation: jets (fastjet), matching,
observables and residuals, 1-Wasserstein distances with bootstrap uncertainties and
the statistical floor, plots and the HTML report of ``parnassus evaluate``.

Modules:

- :mod:`~parnassus.evaluation.jets`: anti-kt clustering, jet matching, C2 and D2;
- :mod:`~parnassus.evaluation.observables`: event, jet and particle observables, residuals;
- :mod:`~parnassus.evaluation.alignment`: pairing of sample and reference events;
- :mod:`~parnassus.evaluation.metrics`: distances, floor, score and tables;
- :mod:`~parnassus.evaluation.pipeline`: one process, end to end;
- :mod:`~parnassus.evaluation.plots` and :mod:`~parnassus.evaluation.report`: the report folder;
- :mod:`~parnassus.evaluation.synthetic`: toy events to try it all.

Importing this package imports neither fastjet nor matplotlib: they are imported
by the functions that use them.
"""
