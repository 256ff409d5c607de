"""evpm training job: fleet simulator, data-set specs, features, models, MLflow registration.

Layout: ``simulator/`` (generative fleet model), ``io/`` (data sets, MLflow), ``core/``
(split, metrics, pipeline, pyfunc wrapper), ``jobs/`` (job models loaded from YAML),
``specs/`` (data-set specs), ``configs/`` (job files). Feature code lives in
:mod:`evpm.features` so serving computes exactly what training did.
"""
