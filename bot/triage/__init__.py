"""Triage: pure, fast functions that read a mention and say how urgent it is and where it goes.

Nothing here touches the database, Slack or the network; the ingest pipeline feeds mentions in
and stores what comes out.
"""
