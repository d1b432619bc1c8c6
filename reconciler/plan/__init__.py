"""The plan as data (model), how values differ (diffing), saved plan files (planfile) and
which resources a plan covers (scope). Knows no provider and no engine.
"""
