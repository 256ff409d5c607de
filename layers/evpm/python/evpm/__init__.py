"""evpm: the domain code of EV fleet predictive maintenance, shared by every Lambda function.

Modules, one concern each: :mod:`evpm.telemetry` (validated readings, feature matrix),
:mod:`evpm.health` (the ``rules-v1`` assessment), :mod:`evpm.scoring` (scorer protocol and
batch scoring), :mod:`evpm.predictions` (prediction model and its DynamoDB item),
:mod:`evpm.ingest` (stream batch processing with poison parking), :mod:`evpm.settings`
(function environments). Only third-party libraries are imported here, never an AWS service.
"""

__version__ = "0.1.0"
