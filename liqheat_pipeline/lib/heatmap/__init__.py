"""Heatmap read side: interval queries, liquidation map, interactive page and PNG preview.

Pure code (DuckDB, pandas, plotly, matplotlib; no Dagster) shared by the heatmap asset and the API.
"""
