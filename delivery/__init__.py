"""The outbox sender process (`flask --app app sender`): drains the outbox on every channel."""
