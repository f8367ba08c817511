"""The vla-perception command line."""
