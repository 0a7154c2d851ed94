"""The local stack: emulators, functions under functions-framework, and the event router.

Everything is created from `infra.model.topology.build_topology`, the same declaration the CDKTF
stack is generated from, so what runs on a laptop is what gets deployed.
"""
