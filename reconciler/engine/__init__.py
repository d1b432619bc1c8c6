"""One run: the graph, the planner, the applier (with recovery), drift, outputs, saved-plan
pins and the runner that ties load -> observe -> plan together. Knows no API: providers
come in through the Kind contract.
"""
