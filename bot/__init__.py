"""mentiondesk: social-media mentions as a customer-care workflow in Slack."""

__version__ = "0.1.0"
