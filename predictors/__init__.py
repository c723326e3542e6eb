"""Load forecasting models (arrival rate, or any metric series) for the decision core."""
