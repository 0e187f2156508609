"""The Powertools for AWS Lambda (Python) v3 public layer the functions use (no CDK import: the rehearsal
publishes the same layer name on a local emulator without loading the CDK).

Powertools publishes the layer from one account in every commercial region and from other accounts outside the
commercial partition (aws-powertools/powertools-lambda-python docs/index.md, "AWS China regions" and "AWS GovCloud
regions", version 27 included). Anywhere else, ``-c powertools_layer_arn=ARN`` names the layer version to use.
"""

import re

POWERTOOLS_LAYER_ACCOUNT = "017000801446"  # AWS publishes the layer from this account in every commercial region
POWERTOOLS_LAYER_CHINA_ACCOUNT = "498634801083"  # partition aws-cn
POWERTOOLS_LAYER_CHINA_REGION = "cn-north-1"  # the only China region the docs list
# Partition aws-us-gov: one publisher account per region.
POWERTOOLS_LAYER_GOVCLOUD_ACCOUNTS = {"us-gov-east-1": "165087284144", "us-gov-west-1": "165093116878"}
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python313-arm64"
POWERTOOLS_LAYER_VERSION = 27
# A Lambda layer version ARN (``-c powertools_layer_arn=``): arn:<partition>:lambda:<region>:<account>:layer:<name>:<n>
LAYER_VERSION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]{1,140}:\d+$")
