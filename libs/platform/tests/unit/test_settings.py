from pathlib import Path

import pytest
from pydantic import ValidationError

from clinic.devstack.stack import SERVICES
from clinic.platform.settings import ServiceSettings, settings_reference


class ExampleSettings(ServiceSettings):
    model_config = {**ServiceSettings.model_config, "env_prefix": "EXAMPLE_"}
    service_name = "example-service"


def test_a_prefixed_variable_configures_one_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_DATABASE_URL", "postgresql://a@db/x")
    assert ExampleSettings().database_url == "postgresql://a@db/x"


def test_a_shared_variable_configures_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/x")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", "false")
    settings = ExampleSettings()
    assert settings.database_url == "postgresql://shared@db/x"
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.kafka_enable_idempotence is False


def test_the_prefixed_variable_wins_over_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/x")
    monkeypatch.setenv("EXAMPLE_DATABASE_URL", "postgresql://mine@db/x")
    assert ExampleSettings().database_url == "postgresql://mine@db/x"


def test_each_service_uses_a_schema_named_after_it_by_default() -> None:
    assert ExampleSettings().schema_name == "example_service"
    assert ExampleSettings(database_schema="other").schema_name == "other"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EXAMPLE_PORT", "0"),
        ("EXAMPLE_PORT", "http"),
        ("EXAMPLE_LOG_LEVEL", "chatty"),
        ("EXAMPLE_DATABASE_SCHEMA", "drop table;"),
    ],
)
def test_bad_configuration_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        ExampleSettings()


def test_every_setting_has_a_description_and_a_default() -> None:
    for env, default, description in settings_reference(ExampleSettings):
        assert description, env
        assert default != "PydanticUndefined", env


def test_the_readme_documents_every_environment_variable_of_every_service() -> None:
    import importlib

    readme = (Path(__file__).resolve().parents[4] / "README.md").read_text()
    common = set(ServiceSettings.model_fields)
    for env, _, _ in settings_reference(ServiceSettings):
        for name in env.split(" / "):
            assert name.replace("CLINIC_", "<PREFIX>") in readme, f"README lacks {name}"
    for spec in SERVICES:
        assert f"`{spec.env_prefix}`" in readme, f"README lacks the prefix of {spec.name}"
        module = importlib.import_module(f"{spec.module}.settings")
        settings_cls = next(
            v
            for k, v in vars(module).items()
            if k.endswith("Settings")
            and isinstance(v, type)
            and issubclass(v, ServiceSettings)
            and v is not ServiceSettings
        )
        for field, (env, _, _) in zip(
            settings_cls.model_fields, settings_reference(settings_cls), strict=True
        ):
            if field not in common:
                assert env.split(" / ")[0] in readme, f"README lacks {env}"
