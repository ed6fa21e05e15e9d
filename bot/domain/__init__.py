"""paperbell's pure domain: models, arXiv ids, name keys, matching and the rules.

Nothing here does I/O or imports the rest of paperbell (`bot.arxiv`, `storage`,
the services or the cogs); everything else imports it.
"""
