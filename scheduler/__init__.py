"""Scheduled jobs (APScheduler) — thin wrappers over services."""
