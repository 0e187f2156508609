"""The Powertools for AWS Lambda (Python) v3 public layer the functions use (no CDK import: the rehearsal
publishes the same layer name on a local emulator without loading the CDK)."""

POWERTOOLS_LAYER_ACCOUNT = "017000801446"  # AWS publishes the layer from this account in every commercial region
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python313-arm64"
POWERTOOLS_LAYER_VERSION = 27
