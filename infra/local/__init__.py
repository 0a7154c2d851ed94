"""The local stack: emulators, functions under functions-framework, and the event router,
created from the topology the CDKTF stack is generated from (docs/local-stack.md)."""
