"""Analysis of losses and runs: statistics, loss comparison, calibration, reports and plots."""
