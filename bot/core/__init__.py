"""The core: wiring, registry, context and Runtime, platform port, outbox, scheduler."""
