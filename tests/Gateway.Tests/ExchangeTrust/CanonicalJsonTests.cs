using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CityGateway.Exchange.Signing;

namespace CityGateway.Tests.ExchangeTrust;

public sealed class CanonicalJsonTests
{
    private static string Canon(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var fromElement = Encoding.UTF8.GetString(CanonicalJson.Serialize(doc.RootElement));
        var fromNode = Encoding.UTF8.GetString(CanonicalJson.Serialize(JsonNode.Parse(json)));
        Assert.Equal(fromElement, fromNode);
        return fromElement;
    }

    [Fact]
    public void Rfc8785_section_3_2_2_example()
    {
        const string input = """
            {
              "numbers": [333333333.33333329, 1E30, 4.50,
                          2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """;
        const string expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        Assert.Equal(expected, Canon(input));
        // The same in bytes: € is E2 82 AC in UTF-8, nothing else is escaped or re-encoded.
        using var doc = JsonDocument.Parse(input);
        Assert.Equal(Encoding.UTF8.GetBytes(expected), CanonicalJson.Serialize(doc.RootElement));
    }

    [Fact]
    public void Rfc8785_section_3_2_3_member_sorting_by_utf16_code_units()
    {
        const string input = """
            {
              "\u20ac": "Euro Sign",
              "\r": "Carriage Return",
              "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One",
              "\ud83d\ude00": "Emoji: Grinning Face",
              "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"
            }
            """;
        var canonical = Canon(input);
        using var doc = JsonDocument.Parse(canonical);
        var values = doc.RootElement.EnumerateObject().Select(p => p.Value.GetString()).ToArray();
        Assert.Equal(new[]
        {
            "Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis",
            "Euro Sign", "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh",
        }, values);
        // U+1F600 (surrogates D83D DE00) sorts before U+FB33 by UTF-16 code units, though after it by code point.
        Assert.StartsWith("{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\"", canonical);
    }

    // RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text.
    [Theory]
    [InlineData(0x0000000000000000UL, "0")]
    [InlineData(0x8000000000000000UL, "0")]
    [InlineData(0x0000000000000001UL, "5e-324")]
    [InlineData(0x8000000000000001UL, "-5e-324")]
    [InlineData(0x7fefffffffffffffUL, "1.7976931348623157e+308")]
    [InlineData(0xffefffffffffffffUL, "-1.7976931348623157e+308")]
    [InlineData(0x4340000000000000UL, "9007199254740992")]
    [InlineData(0xc340000000000000UL, "-9007199254740992")]
    [InlineData(0x4430000000000000UL, "295147905179352830000")]
    [InlineData(0x44b52d02c7e14af5UL, "9.999999999999997e+22")]
    [InlineData(0x44b52d02c7e14af6UL, "1e+23")]
    [InlineData(0x44b52d02c7e14af7UL, "1.0000000000000001e+23")]
    [InlineData(0x444b1ae4d6e2ef4eUL, "999999999999999700000")]
    [InlineData(0x444b1ae4d6e2ef4fUL, "999999999999999900000")]
    [InlineData(0x444b1ae4d6e2ef50UL, "1e+21")]
    [InlineData(0x3eb0c6f7a0b5ed8cUL, "9.999999999999997e-7")]
    [InlineData(0x3eb0c6f7a0b5ed8dUL, "0.000001")]
    [InlineData(0x41b3de4355555553UL, "333333333.3333332")]
    [InlineData(0x41b3de4355555554UL, "333333333.33333325")]
    [InlineData(0x41b3de4355555555UL, "333333333.3333333")]
    [InlineData(0x41b3de4355555556UL, "333333333.3333334")]
    [InlineData(0x41b3de4355555557UL, "333333333.33333343")]
    [InlineData(0xbecbf647612f3696UL, "-0.0000033333333333333333")]
    [InlineData(0x43143ff3c1cb0959UL, "1424953923781206.2")]
    public void Rfc8785_appendix_B_numbers(ulong bits, string expected)
    {
        var d = BitConverter.Int64BitsToDouble((long)bits);
        Assert.Equal(expected, CanonicalJson.FormatNumber(d));
        Assert.Equal(expected, CanonicalJson.SerializeToString(JsonValue.Create(d)));
        // And read back from its canonical text: the same double.
        Assert.Equal(d == 0 ? 0.0 : d, double.Parse(expected, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("1e30", "1e+30")]
    [InlineData("1E+30", "1e+30")]
    [InlineData("4.50", "4.5")]
    [InlineData("0.002", "0.002")]
    [InlineData("2e-3", "0.002")]
    [InlineData("-0", "0")]
    [InlineData("-0.0", "0")]
    [InlineData("333333333.33333329", "333333333.3333333")]
    [InlineData("1e-7", "1e-7")]
    [InlineData("0.0000001", "1e-7")]
    [InlineData("0.000001", "0.000001")]
    [InlineData("1e21", "1e+21")]
    [InlineData("1e20", "100000000000000000000")]
    [InlineData("123456789012345678901", "123456789012345680000")]
    [InlineData("1.0", "1")]
    [InlineData("100", "100")]
    [InlineData("-12.5e1", "-125")]
    [InlineData("0.1", "0.1")]
    [InlineData("1.5e-9", "1.5e-9")]
    [InlineData("12345678.9e15", "1.23456789e+22")]
    public void Numbers_take_the_ecmascript_form(string json, string expected)
    {
        Assert.Equal(expected, Canon(json));
        Assert.Equal("[" + expected + "]", Canon("[ " + json + " ]"));
    }

    [Fact]
    public void Clr_values_in_nodes_serialise_as_their_json_numbers()
    {
        var built = new JsonObject
        {
            ["int"] = 42,
            ["long"] = 9007199254740992L,
            ["decimal"] = 4.50m,
            ["float"] = 0.1f, // as System.Text.Json writes a float: 0.1, not 0.10000000149011612
            ["double"] = 1e21,
            ["negzero"] = -0.0,
            ["text"] = "x",
            ["yes"] = true,
            ["nothing"] = null,
        };
        Assert.Equal("{\"decimal\":4.5,\"double\":1e+21,\"float\":0.1,\"int\":42,\"long\":9007199254740992,\"negzero\":0,\"nothing\":null,\"text\":\"x\",\"yes\":true}",
            CanonicalJson.SerializeToString(built));
        Assert.Equal("null", CanonicalJson.SerializeToString(null));
    }

    [Fact]
    public void The_same_object_built_in_different_orders_serialises_identically()
    {
        JsonObject Build(bool reverse)
        {
            var members = new List<(string, Func<JsonNode?>)>
            {
                ("partner", () => "lyon"),
                ("rows", () => 1200),
                ("epsilon", () => 0.5),
                ("z", () => new JsonArray(3, 2, 1)),
                ("a", () => new JsonObject { ["y"] = 1, ["x"] = new JsonObject { ["b"] = "B", ["a"] = "A" } }),
                ("Ä", () => "non-ascii"),
                ("A", () => "upper"),
                ("aa", () => false),
            };
            if (reverse) members.Reverse();
            var obj = new JsonObject();
            foreach (var (k, v) in members)
            {
                var value = v();
                if (reverse && value is JsonObject inner)
                {
                    // Nested members in the other order too.
                    var flipped = new JsonObject();
                    foreach (var m in inner.Reverse().ToList())
                    {
                        inner.Remove(m.Key);
                        flipped[m.Key] = m.Value;
                    }
                    value = flipped;
                }
                obj[k] = value;
            }
            return obj;
        }

        var a = Build(reverse: false);
        var b = Build(reverse: true);
        Assert.NotEqual(a.ToJsonString(), b.ToJsonString()); // really built differently
        Assert.Equal(CanonicalJson.Serialize(a), CanonicalJson.Serialize(b));
        Assert.Equal("{\"A\":\"upper\",\"a\":{\"x\":{\"a\":\"A\",\"b\":\"B\"},\"y\":1},\"aa\":false,\"epsilon\":0.5,\"partner\":\"lyon\",\"rows\":1200,\"z\":[3,2,1],\"Ä\":\"non-ascii\"}",
            CanonicalJson.SerializeToString(a));

        // Parsed from differently written text: the same bytes again.
        var text = "{ \"z\" : [3,2,1], \"rows\":1.2e3, \"Ä\":\"non-\\u0061scii\", \"A\":\"upper\",\n\"epsilon\":5E-1,\"partner\":\"ly\\u006fn\",\"aa\":false,\"a\":{\"y\":1.0,\"x\":{\"b\":\"B\",\"a\":\"A\"}}}";
        Assert.Equal(CanonicalJson.Serialize(a), CanonicalJson.Serialize(JsonNode.Parse(text)));
    }

    [Fact]
    public void Strings_are_escaped_minimally()
    {
        var s = "\"\\/\b\f\n\r\t\u0000\u0001\u001f\u007f\u2028 é € 😀 <>&'";
        var canonical = CanonicalJson.SerializeToString(JsonValue.Create(s));
        Assert.Equal("\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f\u007f\u2028 é € 😀 <>&'\"", canonical);
        // Round trip: the canonical text reads back to the same string.
        Assert.Equal(s, JsonNode.Parse(canonical)!.GetValue<string>());
        Assert.Equal(new byte[] { 0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22 }, CanonicalJson.Serialize(JsonValue.Create("😀")));
    }

    [Fact]
    public void Values_without_a_canonical_form_are_refused()
    {
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(JsonValue.Create(double.NaN)));
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(new JsonObject { ["x"] = double.PositiveInfinity }));
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(new JsonArray(float.NaN)));
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(JsonValue.Create("lone \ud800 surrogate")));
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(new JsonObject { ["k\udc00"] = 1 }));
        using var dup = JsonDocument.Parse("{\"a\":1,\"b\":2,\"a\":3}");
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(dup.RootElement));
        using var escapedSurrogate = JsonDocument.Parse("[\"\\ud800\"]");
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(escapedSurrogate.RootElement));
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(JsonNode.Parse("{\"a\":\"\\udc00x\"}")));
        using var huge = JsonDocument.Parse("[1e400]");
        Assert.Throws<ArgumentException>(() => CanonicalJson.Serialize(huge.RootElement));
    }

    [Fact]
    public void Arrays_keep_their_order_and_whitespace_disappears()
    {
        Assert.Equal("[3,1,2,[\"b\",\"a\"],{},[]]", Canon(" [ 3 , 1 ,\n 2 , [ \"b\" , \"a\" ] , { } , [ ] ] "));
    }
}
