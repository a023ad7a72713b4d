"""SMS: the templates the service sends, segment counting, and the providers' HTTP APIs."""
