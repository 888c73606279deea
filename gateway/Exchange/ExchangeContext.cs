using CityGateway.Exchange.Audit;
using CityGateway.Exchange.Privacy;
using CityGateway.Exchange.Signing;
using Microsoft.Extensions.Options;

namespace CityGateway.Exchange;

/// <summary>The exchange's state, loaded once at start: agreements, signer, keys, releases, ledger, audit log.
/// Disposed with the host, which releases the ledger's and the audit log's locks for the next start.</summary>
public sealed class ExchangeContext : IDisposable
{
    public ExchangeContext(IOptions<ExchangeOptions> options, TimeProvider? time = null, ILoggerFactory? loggers = null)
    {
        var o = options.Value;
        CityId = o.CityId;
        CityName = o.CityName;
        Agreements = AgreementLoader.LoadFolder(o.AgreementsPath);
        Signer = ReleaseSigner.Load(o.Signing);
        PrivateFiles.CreateFolder(o.DataPath);
        // The key history: the configured key is its newest (checked at start-up), or its first entry.
        var now = (time ?? TimeProvider.System).GetUtcNow();
        KeyHistory = SigningKeyHistory.Load(o.DataPath);
        KeyHistory.EnsureCurrent(Signer, CityId, SigningKeyHistory.FirstUse(o.DataPath, now));
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
    /// <summary>Every key the city has signed with, and the rollover statements between them.</summary>
    public SigningKeyHistory KeyHistory { get; }
    public PartnerKeyStore Keys { get; }
    public ReleaseStore Releases { get; }
    public PrivacyBudgetLedger Ledger { get; }
    public AuditLog Audit { get; }
    /// <summary>The signed checkpoints of <see cref="Audit"/>: issue one after every release.</summary>
    public AuditCheckpoints Checkpoints { get; }

    public Agreement? AgreementFor(string partner) => Agreements.FirstOrDefault(a => a.Partner.Id == partner);

    public void Dispose()
    {
        Audit.Dispose();
        Ledger.Dispose();
        Signer.Dispose();
    }
}
