"""Experiment reports: the paper's comparison table, plots and qualitative predictions.

    python -m yt8m_fusion.report --train_dirs=DIR1,DIR2,... --output_dir=reports/

reads each train_dir (model_flags.json, eval/metrics*.json, train_log.csv, checkpoint,
export/) and writes into --output_dir:

  results.csv, results.md     the table, like the paper's Table 1: model, modalities, GAP,
                              F1, Hit@1, PERR, mAP, parameters, size on disk, training
                              examples/s, widths
  gap_vs_parameters.png       GAP against parameters (the efficiency claim at a glance)
  training_curves.png         training (train_log.csv) and validation (eval JSON) curves
  per_class_ap.png            per-class AP: distribution, and by class frequency
  qualitative.png (+ .csv)    the paper's Figure 3: top-3 of two models beside the truth
  attention.png               Attend-Fusion's attention per modality (tokens or frames)
  report.md                   all of it, with the figures referenced

Python: `write_report(train_dirs, output_dir, ...)` (writer.py), `load_runs` (runs.py),
`results_table` (table.py). See docs/REPORTS.md.
"""

import importlib

# Imported on first use (PEP 562), so that `python -m yt8m_fusion.report` can check its flags
# and report a mistake before TensorFlow is loaded.
_EXPORTS = {
    "Run": "runs", "load_run": "runs", "load_runs": "runs",
    "results_table": "table", "to_markdown": "table",
    "FILES": "writer", "Report": "writer", "choose_comparison": "writer",
    "write_report": "writer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name in _EXPORTS:
    return getattr(importlib.import_module(f"yt8m_fusion.report.{_EXPORTS[name]}"), name)
  raise AttributeError(f"module 'yt8m_fusion.report' has no attribute {name!r}")
