"""Dagster metadata derived from the dataset specs."""

import dagster as dg

from taxi_assets.datasets import DatasetSpec


def table_schema(spec: DatasetSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=f.name,
                type=str(f.type),
                constraints=dg.TableColumnConstraints(nullable=True),
            )
            for f in spec.arrow_schema()
        ]
    )
