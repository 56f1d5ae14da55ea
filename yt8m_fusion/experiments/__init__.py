"""Experiments that train several models and report on them.

`python -m yt8m_fusion.experiments.paper`: the paper's model family on the demo dataset
(or given data), trained with the same data and budget, then the report (yt8m_fusion.report).
"""
