"""Skill of the model against realized liquidations: rank metrics, bucket predictors, storage."""
