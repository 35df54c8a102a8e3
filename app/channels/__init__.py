"""Channel adapters: verify, parse into an InboundMessage, render replies, deliver the outbox."""
