"""Delivery channels behind the one outbox: Telegram, SMS, WeCom group robots, and the web inbox."""
