"""Slash-command cogs: thin translations between Discord and paperbell's services."""
