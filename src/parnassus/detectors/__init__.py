"""Built-in detector cards: ``cms2011`` and ``cmslike``."""
