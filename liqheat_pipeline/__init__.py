"""liqheat: time-evolving liquidation heatmap for Binance USDⓈ-M perpetuals."""
