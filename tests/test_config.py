import pytest

from worker.config import load_settings
from worker.errors import ConfigError


def test_standard_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:4566")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db/x")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    monkeypatch.setenv("FLEET_QUEUE_NAME", "work")
    monkeypatch.setenv("FLEET_LLM_RETRY_DELAYS", "1,2,5")
    settings = load_settings()
    assert settings.aws_region == "eu-west-3"
    assert settings.sqs_endpoint_url == "http://127.0.0.1:4566"
    assert settings.require_database_url() == "postgresql://u:pw@db/x"
    assert settings.queue_name == "work"
    assert settings.dead_letter_queue_name == "work-dlq"
    assert settings.llm_retry_delays == (1.0, 2.0, 5.0)
    assert "sk-abc" not in repr(settings)


def test_generic_endpoint_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9324")
    assert load_settings().sqs_endpoint_url == "http://127.0.0.1:9324"


def test_heartbeat_must_be_shorter_than_visibility() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(visibility_timeout=10, heartbeat_interval=10)
    assert "FLEET_HEARTBEAT_INTERVAL" in str(err.value)
    assert "FLEET_VISIBILITY_TIMEOUT" in str(err.value)


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("FLEET_BATCH_SIZE", "11", "FLEET_BATCH_SIZE"),
        ("FLEET_WAIT_SECONDS", "21", "FLEET_WAIT_SECONDS"),
        ("FLEET_CONCURRENCY", "zero", "FLEET_CONCURRENCY"),
        ("FLEET_LLM_RETRY_DELAYS", "1,-2", "FLEET_LLM_RETRY_DELAYS"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert named in str(err.value)


def test_missing_database_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings().require_database_url()


def test_every_setting_is_documented() -> None:
    from pathlib import Path

    from worker.config import Settings, setting_name

    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    names = [setting_name(n) for n in Settings.model_fields]
    missing = [name for name in names if f"`{name}`" not in doc]
    assert missing == []


def test_settings_built_in_code_are_checked_too() -> None:
    from pydantic import ValidationError

    from worker.config import Settings

    with pytest.raises(ValidationError, match="FLEET_POLLERS"):
        Settings(concurrency=2, pollers=4)


def test_a_misspelled_fleet_variable_is_refused_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEET_CONCURRENCEY", "8")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "FLEET_CONCURRENCEY" in str(err.value)
    assert "did you mean FLEET_CONCURRENCY?" in str(err.value)


def test_each_component_gets_its_own_group() -> None:
    settings = load_settings(queue_name="work", concurrency=12, send_spacing=3)
    assert settings.queue.dead_letter_queue_name == "work-dlq"
    assert settings.consumer.concurrency == 12
    assert settings.consumer.lease == settings.visibility_timeout
    assert settings.sends.send_spacing == 3
    assert not hasattr(settings.sends, "concurrency")
    with pytest.raises(ValueError, match="frozen"):
        settings.consumer.concurrency = 1  # type: ignore[misc]
