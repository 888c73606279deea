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
        CityLedger = new PrivacyBudgetLedger(Path.Combine(o.DataPath, "city-ledger.json"));
        Cells = new CellStore(Path.Combine(o.DataPath, "cells"));
        Records = new ReleaseRecords(Path.Combine(o.DataPath, "release-records.jsonl"));
        ImportUnrecordedReleases();
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

    /// <summary>The city-wide ledger: one entry per cell group, its "partner" being the dataset (domain), its budget Gateway:Exchange:CityEpsilonPerMonth.</summary>
    public PrivacyBudgetLedger CityLedger { get; }

    /// <summary>The one noisy answer of every cell, shared by every partner entitled to it.</summary>
    public CellStore Cells { get; }

    /// <summary>The durable record of every release (what "already released" is decided from).</summary>
    public ReleaseRecords Records { get; }

    /// <summary>Release files made before the records existed get a record from their own payload, so they can be restored too.</summary>
    private void ImportUnrecordedReleases()
    {
        foreach (var agreement in Agreements)
            foreach (var r in Releases.After(agreement.Partner.Id, 0, int.MaxValue))
            {
                if (Records.TryGet(r.Partner, r.WindowStart, out _)) continue;
                if (ReleaseStore.Payload(r) is { } payload) Records.Append(new ReleaseRecord(r.Partner, r.Sequence, r.WindowStart, payload));
            }
    }

    public Agreement? AgreementFor(string partner) => Agreements.FirstOrDefault(a => a.Partner.Id == partner);

    /// <summary>Releases the ledgers' and the audit log's locks, so a new gateway on the same data folder (a restart) can open them.</summary>
    public void Dispose()
    {
        Audit.Dispose();
        Ledger.Dispose();
        CityLedger.Dispose();
        Signer.Dispose();
    }
}
