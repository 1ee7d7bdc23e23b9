"""Evaluation: eval sets, answering, pairwise judging, statistics, leaderboard and report."""
