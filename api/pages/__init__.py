"""Server-rendered pages for people without a Chorus account (the client share page)."""
