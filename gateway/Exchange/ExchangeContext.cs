using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Privacy;
using CityGateway.Exchange.Signing;
using Microsoft.Extensions.Options;

namespace CityGateway.Exchange;

/// <summary>The exchange's state, loaded once at start: agreements, signer, keys, releases, ledger, audit log.</summary>
public sealed class ExchangeContext
{
    public ExchangeContext(IOptions<ExchangeOptions> options, ILoggerFactory? loggers = null)
    {
        var o = options.Value;
        CityId = o.CityId;
        CityName = o.CityName;
        Agreements = AgreementLoader.LoadFolder(o.AgreementsPath);
        Signer = ReleaseSigner.Load(o.Signing);
        Directory.CreateDirectory(o.DataPath);
        Keys = new PartnerKeyStore(Path.Combine(o.DataPath, "partner-keys.json"));
        Releases = new ReleaseStore(Path.Combine(o.DataPath, "releases"));
        Ledger = new PrivacyBudgetLedger(Path.Combine(o.DataPath, "budget-ledger.json"));
        Audit = new AuditLog(Path.Combine(o.DataPath, "audit.jsonl"));
        Checkpoints = new AuditCheckpoints(Path.Combine(o.DataPath, AuditCheckpoints.FileName), Audit, Signer, CityId, loggers?.CreateLogger<AuditCheckpoints>());
        Checkpoints.IssueIfMoved();
    }

    public string CityId { get; }
    public string CityName { get; }
    public IReadOnlyList<Agreement> Agreements { get; }
    public ReleaseSigner Signer { get; }
    public PartnerKeyStore Keys { get; }
    public ReleaseStore Releases { get; }
    public PrivacyBudgetLedger Ledger { get; }
    public AuditLog Audit { get; }
    /// <summary>The signed checkpoints of <see cref="Audit"/>: issue one after every release.</summary>
    public AuditCheckpoints Checkpoints { get; }

    public Agreement? AgreementFor(string partner) => Agreements.FirstOrDefault(a => a.Partner.Id == partner);
}
