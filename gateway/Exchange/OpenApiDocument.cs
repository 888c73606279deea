namespace CityGateway.Exchange;

/// <summary>The OpenAPI 3.0 description of the partner API, served at /api/exchange/v1/openapi.json.</summary>
internal static class OpenApiDocument
{
    public const string Json = """
{
  "openapi": "3.0.3",
  "info": {
    "title": "City exchange API",
    "version": "1",
    "description": "Anonymised, signed releases of city metrics for partner cities under a data-sharing agreement. Each release is an envelope {payload, signature}; the signature (ES256, IEEE P1363, base64url) is over the RFC 8785 canonical JSON of the payload and verifies with the key its signature.keyId names, listed in 'keys' at /.well-known/city-exchange (every key the city has signed with; 'rollovers' are statements signed by the previous key). 401: key missing, unknown or revoked; 429: more than the allowed failed authentications a minute from your address (the key is not checked then), or more than your city's requests a minute, with Retry-After; 403: another partner's feed, no agreement, or the agreement is not yet valid or has expired (the detail says which)."
  },
  "components": {
    "securitySchemes": { "partnerKey": { "type": "http", "scheme": "bearer", "description": "The key issued to your city." } },
    "schemas": {
      "Problem": { "type": "object", "properties": { "type": {"type":"string"}, "title": {"type":"string"}, "status": {"type":"integer"}, "detail": {"type":"string"} } },
      "Row": { "type": "object", "properties": { "district": {"type":"string"}, "domain": {"type":"string"}, "metric": {"type":"string"}, "aggregate": {"type":"string"}, "value": {"type":"number"} } },
      "Payload": { "type": "object", "properties": {
        "city": {"type":"string"}, "partner": {"type":"string"}, "agreementVersion": {"type":"string"}, "sequence": {"type":"integer"},
        "window": { "type":"object", "properties": { "start": {"type":"string","format":"date-time"}, "end": {"type":"string","format":"date-time"} } },
        "epsilon": {"type":"number"}, "rows": { "type":"array", "items": {"$ref":"#/components/schemas/Row"} } } },
      "Release": { "type": "object", "properties": {
        "payload": {"$ref":"#/components/schemas/Payload"},
        "signature": { "type":"object", "properties": { "alg": {"type":"string"}, "keyId": {"type":"string"}, "value": {"type":"string"} } } } },
      "Feed": { "type": "object", "properties": {
        "partner": {"type":"string"}, "releases": { "type":"array", "items": {"$ref":"#/components/schemas/Release"} },
        "next": {"type":"string", "description":"cursor for the next call's 'since'"}, "more": {"type":"boolean"},
        "checkpoint": { "allOf": [ {"$ref":"#/components/schemas/Checkpoint"} ], "nullable": true, "description": "the latest signed checkpoint of the city's audit log, as at /checkpoint; null before the first release" } } },
      "Checkpoint": { "type": "object", "description": "A signed checkpoint of the city's hash-chained audit log: the city vouches that entry 'seq' of its log has hash 'head'. Same envelope and signature as a release. Keep every checkpoint you receive: a log that later lacks that entry with that hash (edited and re-chained, or cut) fails 'Gateway exchange verify-audit --file LOG --checkpoint FILE --public-key PEM'. A checkpoint with a lower seq than one already received, or the same seq with another head, means the log was rolled back or forked.",
        "properties": {
          "payload": { "type":"object", "required": ["type","city","seq","head","time"], "additionalProperties": false, "properties": {
            "type": {"type":"string", "enum":["audit-checkpoint"]},
            "city": {"type":"string"},
            "seq": {"type":"integer", "minimum":1, "description":"sequence number of the audit entry covered (the log's last entry when signed)"},
            "head": {"type":"string", "pattern":"^[0-9a-f]{64}$", "description":"that entry's hash (SHA-256, lower-case hex)"},
            "time": {"type":"string", "format":"date-time", "description":"when the city signed it, UTC, whole seconds"} } },
          "signature": { "type":"object", "properties": { "alg": {"type":"string"}, "keyId": {"type":"string"}, "value": {"type":"string"} } } } }
    },
    "responses": {
      "Problem": { "description": "Error", "content": { "application/problem+json": { "schema": {"$ref":"#/components/schemas/Problem"} } } }
    }
  },
  "security": [ { "partnerKey": [] } ],
  "paths": {
    "/api/exchange/v1/feed": {
      "get": {
        "summary": "Releases for your city, in order, after a cursor",
        "parameters": [
          { "name": "since", "in": "query", "schema": {"type":"string"}, "description": "cursor from a previous answer's 'next'; omit to start at the first release" },
          { "name": "limit", "in": "query", "schema": {"type":"integer","minimum":1,"maximum":500,"default":50} }
        ],
        "responses": {
          "200": { "description": "Releases", "headers": { "ETag": {"schema":{"type":"string"}} },
            "content": { "application/json": { "schema": {"$ref":"#/components/schemas/Feed"} },
                         "text/csv": { "schema": {"type":"string"}, "description": "sequence,window_start,window_end,district,domain,metric,aggregate,value (unsigned)" } } },
          "304": { "description": "Not modified (If-None-Match)" },
          "400": { "$ref": "#/components/responses/Problem" },
          "401": { "$ref": "#/components/responses/Problem" },
          "403": { "$ref": "#/components/responses/Problem" },
          "429": { "$ref": "#/components/responses/Problem" }
        }
      }
    },
    "/api/exchange/v1/checkpoint": {
      "get": {
        "summary": "The latest signed checkpoint of the city's audit log (one after every release, and at start-up when the log moved)",
        "responses": {
          "200": { "description": "Checkpoint envelope", "content": { "application/json": { "schema": {"$ref":"#/components/schemas/Checkpoint"} } } },
          "401": { "$ref": "#/components/responses/Problem" },
          "403": { "$ref": "#/components/responses/Problem" },
          "404": { "$ref": "#/components/responses/Problem" },
          "429": { "$ref": "#/components/responses/Problem" }
        }
      }
    },
    "/api/exchange/v1/agreement": {
      "get": {
        "summary": "Your agreement's terms and remaining privacy budget",
        "responses": { "200": { "description": "Terms" }, "401": { "$ref": "#/components/responses/Problem" }, "403": { "$ref": "#/components/responses/Problem" }, "429": { "$ref": "#/components/responses/Problem" } }
      }
    },
    "/.well-known/city-exchange": {
      "get": { "summary": "City id, name, current signing key (keyId, publicKey), every key with its validity (keys), rollover statements (rollovers), API base", "security": [], "responses": { "200": { "description": "Discovery document" } } }
    }
  }
}
""";
}
