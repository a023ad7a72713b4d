"""Scheduled jobs (APScheduler 3): thin wrappers that call `services.jobs` inside an app context."""
