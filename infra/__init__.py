"""The evpm CDK app: stacks, constructs, names and settings.

``infra`` imports only CDK and its own modules; everything else (function code, layers, state
machine definitions) is referred to by path as an asset, so synthesis never runs project code.
"""
