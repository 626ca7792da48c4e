"""The few GraphQL calls the end-to-end test makes, on top of dagster-graphql's client."""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

ERROR_FIELDS = "... on Error { message } ... on PythonError { message stack }"


class GraphQLError(AssertionError):
    pass


class TaxiGraphQL(DagsterGraphQLClient):
    def query(self, document: str, **variables: Any) -> dict:
        try:
            return self._execute(document, variables)
        except DagsterGraphQLClientError as exc:
            # The client's message repeats the query; the server's answer is in the cause.
            raise GraphQLError(f"{exc.__cause__ or exc}") from exc

    def _ok(self, result: dict, field: str, typename: str) -> dict:
        value = result[field]
        if value.get("__typename") != typename:
            raise GraphQLError(f"{field}: expected {typename}, got {value}")
        return value

    def location_status(self, name: str) -> str | None:
        """LOADED once the code location answered, None while it is loading, else its error."""
        entries = self.query(
            """{ workspaceOrError { __typename ... on Workspace { locationEntries {
                 name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        )["workspaceOrError"]["locationEntries"]
        for entry in entries:
            if entry["name"] == name and entry["loadStatus"] == "LOADED":
                loaded = entry["locationOrLoadError"]
                return "LOADED" if loaded["__typename"] == "RepositoryLocation" else str(loaded)
        return None

    def launch_backfill(self, partition_keys: list[str], asset_keys: list[dg.AssetKey], title: str) -> str:
        result = self.query(
            f"""mutation($params: LaunchBackfillParams!) {{
                 launchPartitionBackfill(backfillParams: $params) {{
                   __typename ... on LaunchBackfillSuccess {{ backfillId }} {ERROR_FIELDS} }} }}""",
            params={
                "partitionNames": partition_keys,
                "assetSelection": [{"path": key.path} for key in asset_keys],
                "title": title,
            },
        )
        return self._ok(result, "launchPartitionBackfill", "LaunchBackfillSuccess")["backfillId"]

    def launch_asset_run(self, location: str, asset_keys: list[dg.AssetKey], partition_key: str) -> str:
        """What the UI's Materialize button does for one partition: a run of the assets' job."""
        result = self.query(
            f"""mutation($params: ExecutionParams!) {{ launchPipelineExecution(executionParams: $params) {{
                 __typename ... on LaunchRunSuccess {{ run {{ runId }} }} {ERROR_FIELDS} }} }}""",
            params={
                "selector": {
                    "repositoryLocationName": location,
                    "repositoryName": "__repository__",
                    "pipelineName": "__ASSET_JOB",
                    "assetSelection": [{"path": key.path} for key in asset_keys],
                },
                "mode": "default",
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition_key}]},
            },
        )
        return self._ok(result, "launchPipelineExecution", "LaunchRunSuccess")["run"]["runId"]

    def backfill_status(self, backfill_id: str) -> str:
        result = self.query(
            f"""query($id: String!) {{ partitionBackfillOrError(backfillId: $id) {{
                 __typename ... on PartitionBackfill {{ status }} {ERROR_FIELDS} }} }}""",
            id=backfill_id,
        )
        return self._ok(result, "partitionBackfillOrError", "PartitionBackfill")["status"]

    def materialized_partitions(self, key: dg.AssetKey) -> dict:
        """partitionStats plus the materialized key ranges of a time-partitioned asset."""
        result = self.query(
            """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) {
                 __typename ... on AssetNode {
                   partitionStats { numMaterialized numFailed numMaterializing }
                   assetPartitionStatuses { ... on TimePartitionStatuses {
                     ranges { status startKey endKey } } } }
                 ... on AssetNotFoundError { message } } }""",
            key={"path": key.path},
        )
        node = self._ok(result, "assetNodeOrError", "AssetNode")
        return {
            **node["partitionStats"],
            "materialized_ranges": [
                (r["startKey"], r["endKey"])
                for r in node["assetPartitionStatuses"]["ranges"]
                if r["status"] == "MATERIALIZED"
            ],
        }

    def runs(self, tags: dict[str, str]) -> list[dict]:
        result = self.query(
            f"""query($filter: RunsFilter!) {{ runsOrError(filter: $filter) {{ __typename
                 ... on Runs {{ results {{ runId status tags {{ key value }} }} }} {ERROR_FIELDS} }} }}""",
            filter={"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        )
        runs = self._ok(result, "runsOrError", "Runs")["results"]
        return [{**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in runs]

    def sensor_state(self, location: str, name: str) -> dict | None:
        """The sensor's name, state and targets; None when the location has no such sensor."""
        result = self.query(
            f"""query($selector: SensorSelector!) {{ sensorOrError(sensorSelector: $selector) {{ __typename
                 ... on Sensor {{ name sensorState {{ status }} targets {{ pipelineName }} }}
                 {ERROR_FIELDS} }} }}""",
            selector=self._sensor_selector(location, name),
        )
        if result["sensorOrError"]["__typename"] == "SensorNotFoundError":
            return None
        return self._ok(result, "sensorOrError", "Sensor")

    def start_sensor(self, location: str, name: str) -> str:
        result = self.query(
            f"""mutation($selector: SensorSelector!) {{ startSensor(sensorSelector: $selector) {{
                 __typename ... on Sensor {{ sensorState {{ status }} }} {ERROR_FIELDS} }} }}""",
            selector=self._sensor_selector(location, name),
        )
        return self._ok(result, "startSensor", "Sensor")["sensorState"]["status"]

    @staticmethod
    def _sensor_selector(location: str, name: str) -> dict:
        return {"repositoryLocationName": location, "repositoryName": "__repository__", "sensorName": name}

    def partition_metadata(self, key: dg.AssetKey, partition_keys: list[str]) -> dict[str, dict[str, Any]]:
        """{partition: {label: value}} of each partition's latest materialization (numbers and text)."""
        result = self.query(
            """query($key: AssetKeyInput!, $partitions: [String!]) { assetOrError(assetKey: $key) {
                 __typename ... on Asset { assetMaterializations(partitions: $partitions) {
                   partition timestamp metadataEntries { label
                     ... on IntMetadataEntry { intValue } ... on FloatMetadataEntry { floatValue }
                     ... on TextMetadataEntry { text } ... on PathMetadataEntry { path } } } }
                 ... on AssetNotFoundError { message } } }""",
            key={"path": key.path},
            partitions=partition_keys,
        )
        latest: dict[str, dict] = {}
        for event in sorted(self._ok(result, "assetOrError", "Asset")["assetMaterializations"],
                            key=lambda e: float(e["timestamp"])):  # fmt: skip
            latest[event["partition"]] = {
                entry["label"]: next((v for k, v in entry.items() if k != "label"), None)
                for entry in event["metadataEntries"]
            }
        return latest

    def check_partition_statuses(self, key: dg.AssetKey) -> dict[str, list[tuple[str, str, str]]]:
        """{check name: [(status, first key, last key), ...]}: what a check's Partitions tab draws
        (no ranges while the webserver has not computed them yet)."""
        result = self.query(
            """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) {
                 __typename ... on AssetNode { assetChecksOrError { __typename
                   ... on AssetChecks { checks { name partitionStatuses {
                     ... on AssetCheckTimePartitionStatuses { ranges { status startKey endKey } } } } } } }
                 ... on AssetNotFoundError { message } } }""",
            key={"path": key.path},
        )
        checks = self._ok(result, "assetNodeOrError", "AssetNode")["assetChecksOrError"]["checks"]
        return {
            check["name"]: [
                (r["status"], r["startKey"], r["endKey"]) for r in (check["partitionStatuses"] or {}).get("ranges", [])
            ]
            for check in checks
        }
