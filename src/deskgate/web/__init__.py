"""The Command Center: the web application where people approve, reject and reset the breaker."""
