"""Telegram bot (python-telegram-bot): reminders, notices, survey — see issue on the bot and outbox."""
