"""CDKTF constructs of the pipeline, one per concern. They import cdktf; nothing else in
`infra` outside `stack.py` and this package does."""
