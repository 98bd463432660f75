"""Pure status computation: what the operator reports, from what it observed."""
