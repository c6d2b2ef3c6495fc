"""deficit: backtest package."""
