"""Network connectors: one module per network, each implementing `bot.connectors.base`."""
