"""The pure core: vocabulary and case lifecycle. No Slack, HTTP or SQL imports here."""
