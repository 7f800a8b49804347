"""The synthetic Russian document generator: Faker ``ru_RU`` values drawn onto realistic layouts.

``fields`` (standard library only) names the document types, their field keys and the Russian
labels printed on the images; ``values`` draws ground truth, ``layouts`` renders it,
``degrade`` adds scan artefacts and ``generate`` writes a native dataset, in parallel.
"""
