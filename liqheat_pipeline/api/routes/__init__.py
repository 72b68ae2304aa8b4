"""The API's routers, one per resource group: heatmap, realized liquidations, pages, docs."""
