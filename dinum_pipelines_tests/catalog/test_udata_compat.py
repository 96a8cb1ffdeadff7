"""udata behaviours datagouv-client relies on (issue 12's four gaps), on SQLite and PostgreSQL:
reordering with resource objects, a resource by its id alone (API v2), organizations created
through the API, and deleted datasets that their editors still see, list and restore."""

from __future__ import annotations


def _two_resources(api, dataset):
    first = api.upload(dataset["id"], "a.csv", b"a\n1\n").json()
    second = api.upload(dataset["id"], "b.csv", b"b\n2\n").json()
    return first, second


def test_resources_are_reordered_from_ids_or_from_resource_objects(api, dataset):
    first, second = _two_resources(api, dataset)
    by_objects = api.put(f"/datasets/{dataset['id']}/resources/", json=[{"id": second["id"]}, {"id": first["id"], "title": "x"}])
    assert by_objects.status_code == 200 and [r["id"] for r in by_objects.json()] == [second["id"], first["id"]]
    by_ids = api.put(f"/datasets/{dataset['id']}/resources/", json=[first["id"], second["id"]])
    assert [r["id"] for r in by_ids.json()] == [first["id"], second["id"]]
    for bad in ({"id": first["id"]}, [{"title": "no id"}], [1, 2]):
        assert api.put(f"/datasets/{dataset['id']}/resources/", json=bad).status_code == 400


def test_a_resource_by_its_id_alone(api, anonymous, dataset):
    first, _ = _two_resources(api, dataset)
    response = anonymous.get(f"/api/2/datasets/resources/{first['id']}/")
    assert response.status_code == 200
    body = response.json()
    assert body["dataset_id"] == dataset["id"] and body["resource"]["id"] == first["id"]
    assert body["resource"]["checksum"] == first["checksum"]
    assert anonymous.get("/api/2/datasets/resources/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert api.delete(f"/datasets/{dataset['id']}/").status_code == 204
    assert anonymous.get(f"/api/2/datasets/resources/{first['id']}/").status_code == 410


def test_a_private_datasets_resource_is_hidden_from_others(api, anonymous, publisher):
    private = api.create_dataset(organization=publisher.organization_id, private=True)
    resource = api.upload(private["id"], "a.csv", b"a\n1\n").json()
    assert anonymous.get(f"/api/2/datasets/resources/{resource['id']}/").status_code == 404
    assert api.get(f"/api/2/datasets/resources/{resource['id']}/").status_code == 200


def test_an_organization_created_through_the_api(api, anonymous):
    created = api.post("/organizations/", json={"name": "Direction des données", "acronym": "DDD", "description": "Une direction."})
    assert created.status_code == 201, created.text
    org = created.json()
    assert org["name"] == "Direction des données" and org["slug"] == "direction-des-donnees"
    assert [member["role"] for member in org["members"]] == ["admin"]
    again = api.post("/organizations/", json={"name": "Direction des données"}).json()
    assert again["slug"] == "direction-des-donnees-1"
    dataset = api.create_dataset(organization=org["id"])  # its creator may publish in it
    assert dataset["organization"]["id"] == org["id"]
    assert anonymous.post("/organizations/", json={"name": "Anonyme"}).status_code == 401
    assert api.post("/organizations/", json={"acronym": "X"}).status_code == 400


def test_a_deleted_dataset_is_seen_listed_and_restored_by_its_editors(api, anonymous, outsider, dataset):
    path = f"/datasets/{dataset['id']}/"
    resource = api.upload(dataset["id"], "a.csv", b"a\n1\n").json()
    assert api.delete(path).status_code == 204
    assert api.delete(path).status_code == 410

    seen = api.get(path)
    assert seen.status_code == 200 and seen.json()["deleted"] is not None
    assert api.get(f"/api/2/datasets/resources/{resource['id']}/").status_code == 200
    for other in (anonymous, outsider):
        assert other.get(path).status_code == 410
    assert [d["id"] for d in api.get("/datasets/?deleted=true").json()["data"]] == [dataset["id"]]
    assert api.get("/datasets/").json()["total"] == api.get("/datasets/?deleted=false").json()["total"] == 0
    assert outsider.get("/datasets/?deleted=true").json()["total"] == 0
    assert anonymous.get("/datasets/?deleted=true").status_code == 401
    assert api.get("/datasets/?deleted=maybe").json()["errors"] == {"deleted": ["deleted must be true or false."]}

    # Any write but the restoration stays 410; the restoration may carry other changes.
    assert api.put(path, json={"title": "Encore supprimé"}).status_code == 410
    assert api.post(f"{path}resources/", json={"title": "r", "url": "https://example.org/r.csv", "filetype": "remote"}).status_code == 410
    assert outsider.put(path, json={"deleted": None}).status_code == 403
    assert api.put(path, json={"deleted": "2024-01-01T00:00:00+00:00"}).status_code == 410
    restored = api.put(path, json={"deleted": None, "title": "Restauré"})
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted"] is None and restored.json()["title"] == "Restauré"
    assert anonymous.get(path).status_code == 200
    assert api.get("/datasets/?deleted=true").json()["total"] == 0
    assert api.put(path, json={"deleted": "2024-01-01T00:00:00+00:00"}).json()["errors"]["deleted"]


def test_an_organization_is_edited_deleted_and_restored_by_its_admins(api, anonymous, outsider, publisher):
    org = api.post("/organizations/", json={"name": "Service statistique"}).json()
    path = f"/organizations/{org['id']}/"
    assert api.get(f"/organizations/{publisher.organization_slug}/").status_code == 200
    # The publisher is an editor of its own organization, not an admin: udata keeps edits to admins.
    assert api.put(f"/organizations/{publisher.organization_slug}/", json={"name": "x"}).status_code == 403
    assert outsider.put(path, json={"name": "x"}).status_code == 403

    updated = api.put(path, json={"description": "Statistiques.", "url": "https://stats.example.org", "extras": {"siret": "1"}})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["description"], updated.json()["url"], updated.json()["slug"]) == (
        "Statistiques.", "https://stats.example.org", "service-statistique",
    )
    assert api.put(path, json={"url": "ftp://x"}).json()["errors"] == {"url": ["Expected an http(s) URL."]}
    assert api.put(path, json={"description": None}).json()["description"] == ""

    extras = f"/api/2/organizations/{org['id']}/extras/"
    assert api.put(extras, json={"ror": "03x", "siret": None}).json() == {"ror": "03x"}
    assert anonymous.get(extras).json() == {"ror": "03x"}
    assert api.delete(extras, json=["ror"]).status_code == 204
    assert anonymous.get(path).json()["extras"] == {}
    assert outsider.put(extras, json={"a": "b"}).status_code == 403

    assert api.delete(path).status_code == 204
    assert anonymous.get(path).status_code == 410 and outsider.get(path).status_code == 410
    seen = api.get(path)
    assert seen.status_code == 200 and seen.json()["deleted"] is not None
    assert api.put(path, json={"name": "Encore"}).status_code == 410
    assert api.delete(path).status_code == 410
    restored = api.put(path, json={"deleted": None})
    assert restored.status_code == 200 and restored.json()["deleted"] is None
    assert anonymous.get(path).status_code == 200
