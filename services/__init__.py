"""The domain layer: plain functions over a SQLAlchemy session, shared by web, bot, CLI and jobs."""
