//! Every Workflow file under shared/conformance/metadata: imports, with exactly the actions, rules and
//! skipped definitions that reading the file gives; re-import is identical; what stays active compiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model::{Criteria, TriggerType};
use rules::{ImportedWorkflow, compile, import_workflow, object_for_file, schema_for_import};

const METADATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/metadata"
);

use TriggerType::{
    OnAllChanges as ALL, OnCreateOnly as CREATE, OnCreateOrTriggeringUpdate as TRIGGERING,
};

enum Fields {
    Exact(&'static [&'static str]),
    /// Count, first and last of a long list.
    Summary(usize, &'static str, &'static str),
}

struct ActionExp {
    name: &'static str,
    endpoint: &'static str,
    fields: Fields,
    api: &'static str,
    session: bool,
    user: &'static str,
    dead_letter: bool,
    description: Option<&'static str>,
}

enum Crit {
    Items(
        &'static [(&'static str, &'static str, Option<&'static str>)],
        Option<&'static str>,
    ),
    Formula(&'static str),
    /// Start, end, and fragments in between, for long formulas.
    FormulaParts(&'static str, &'static str, &'static [&'static str]),
}

struct RuleExp {
    name: &'static str,
    /// After import: rules casewire cannot evaluate are imported inactive.
    active: bool,
    trigger: TriggerType,
    criteria: Crit,
    actions: &'static [&'static str],
}

struct FileExp {
    path: &'static str,
    object: &'static str,
    actions: Vec<ActionExp>,
    rules: Vec<RuleExp>,
    /// Number of skipped entries per kind.
    skipped: &'static [(&'static str, usize)],
    /// Every `formula` / `criteriaItems` skipped entry: (kind, rule, fragment of the reason).
    unsupported: &'static [(&'static str, &'static str, &'static str)],
    /// The rule named by each `workflowTimeTriggers` entry, in order.
    time_triggers: &'static [&'static str],
}

fn rule(
    name: &'static str,
    active: bool,
    trigger: TriggerType,
    criteria: Crit,
    actions: &'static [&'static str],
) -> RuleExp {
    RuleExp {
        name,
        active,
        trigger,
        criteria,
        actions,
    }
}

#[allow(clippy::too_many_arguments)]
fn action(
    name: &'static str,
    endpoint: &'static str,
    fields: Fields,
    api: &'static str,
    session: bool,
    user: &'static str,
    dead_letter: bool,
    description: Option<&'static str>,
) -> ActionExp {
    ActionExp {
        name,
        endpoint,
        fields,
        api,
        session,
        user,
        dead_letter,
        description,
    }
}

const LEAD_ASSIGNMENT: &str = "AND(NOT(CONTAINS($Profile.Name ,'Partner')), ISPICKVAL( Lead_State__c,'New') , ISPICKVAL( Status , 'Open') , RecordTypeId = $Label.Qualified_Lead_Record_Type, NOT(CONTAINS( OwnerId ,'00G') ) )";
const ZPAPER: &str = "https://legacy4.example.com/kb/services/OutboundMessageService";

fn expectations() -> Vec<FileExp> {
    vec![
        FileExp {
            path: "NightlyBackups/workflows/Contact.workflow",
            object: "Contact",
            actions: vec![action(
                "AppcuesOnContactCreateUpdate_ZTbmTG",
                "https://legacy2.example.com",
                Fields::Exact(&["Id"]),
                "37.0",
                false,
                "user7@example.com",
                false,
                None,
            )],
            rules: vec![rule(
                "AppcuesOnContactCreateUpdate_ZTbmTG",
                true,
                ALL,
                Crit::Formula("!ISBLANK(Id)"),
                &["AppcuesOnContactCreateUpdate_ZTbmTG"],
            )],
            skipped: &[("alerts", 1)],
            unsupported: &[],
            time_triggers: &[],
        },
        FileExp {
            path: "SFDC/workflows/Account.workflow",
            object: "Account",
            actions: vec![
                action(
                    "Account_OB_Send_NDA_Tech_Geo_to_OpenText",
                    "https://legacy8.example.com/aianoauth/soa-infra/services/SF/SFNDAService/SFNDAService_client",
                    Fields::Exact(&[
                        "ASIC_Business_Flag__c",
                        "ASIC_Flag_Changed__c",
                        "Account_Present_In_OT__c",
                        "Corporate_Country__c",
                        "Financial_Territory__c",
                        "Has_Valid_NDA__c",
                        "Id",
                        "Latest_NDA_Expiration_Date__c",
                        "Name",
                        "Record_Type_Name__c",
                        "Region__c",
                        "Short_Name__c",
                        "Sub_Type__c",
                        "Tech_Geo_Granted__c",
                        "Valid_Tech_Geos__c",
                    ]),
                    "28.0",
                    true,
                    "user56@example.com",
                    false,
                    Some(
                        "https://legacy7.example.com/sfaia/soa-infra/services/SF/SFNDAService/SFNDAService_client",
                    ),
                ),
                action(
                    "Account_To_AIA",
                    "https://legacy8.example.com/aianoauth/soa-infra/services/SF/AccountAIAService/AccountAIAService_client",
                    Fields::Summary(73, "Account_Present_In_OT__c", "Transaction_Type__c"),
                    "26.0",
                    true,
                    "user56@example.com",
                    false,
                    Some(
                        "https://legacy9.example.com/sfaia/soa-infra/services/SF/AccountAIAService/AccountAIAService_client",
                    ),
                ),
            ],
            rules: vec![
                rule(
                    "Account - Copy Owner Profile",
                    false,
                    ALL,
                    Crit::Items(&[("Account.OwnerId", "notEqual", None)], None),
                    &[],
                ),
                rule(
                    "Account - Field Update - Approval Status",
                    false,
                    ALL,
                    Crit::FormulaParts(
                        "or (AND(ISCHANGED(Approval_Request__c), NOT(ISPICKVAL(Approval_Request__c, \"\"))), ",
                        "AND(ISCHANGED(New_Organization_Unit_Request__c), NOT(ISPICKVAL(New_Organization_Unit_Request__c, \"\"))) )",
                        &[
                            "and (ISCHANGED( Bill_To_State_Change_Request__c ), not(ispickval(Bill_To_State_Change_Request__c, \"\") )),",
                        ],
                    ),
                    &[],
                ),
                rule(
                    "Account - Outbound Message - To AIA",
                    false,
                    ALL,
                    Crit::FormulaParts(
                        "if (!ispickval(Stage__c, \"Unqualified\"),     AND(!$Setup.IntegrationUsers__c.Is_Integration_User__c,",
                        "ISCHANGED(Region_Head_Backup__c))     ))",
                        &[
                            "Record_Type_Name__c = 'GLOBALFOUNDRIES Internal'",
                            "CONTAINS(Siebel_AccountComplete__c, 'TRUE')",
                        ],
                    ),
                    &["Account_To_AIA"],
                ),
                rule(
                    "Account - Parent Account Change",
                    false,
                    ALL,
                    Crit::Formula("OR(ISCHANGED(ParentId), ISCHANGED(Sales_Territory__c))"),
                    &[],
                ),
                rule(
                    "Account - Record Type - Customer %28on Lead Conversion%29",
                    false,
                    CREATE,
                    Crit::Items(
                        &[("Account.Account_Type__c", "equals", Some("Customer"))],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "Account - Record Type - Enablement Partner %28on Lead Conversion%29",
                    false,
                    CREATE,
                    Crit::Items(
                        &[(
                            "Account.Account_Type__c",
                            "equals",
                            Some("Enablement Partner"),
                        )],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "Account - Record Type - GLOBALFOUNDRIES Internal %28on Lead Conversion%29",
                    false,
                    CREATE,
                    Crit::Items(
                        &[(
                            "Account.Account_Type__c",
                            "equals",
                            Some("GLOBALFOUNDRIES Internal"),
                        )],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "Account - Record Type - Reseller %28on Lead Conversion%29",
                    false,
                    CREATE,
                    Crit::Items(
                        &[("Account.Account_Type__c", "equals", Some("Reseller"))],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "Account - Reset Fields on Clone",
                    false,
                    CREATE,
                    Crit::Formula("TRUE"),
                    &[],
                ),
                rule(
                    "Account WF Send NDA Info to OpenText",
                    false,
                    ALL,
                    Crit::FormulaParts(
                        "OR(  $Profile.Name == 'GF Integration',  $Profile.Name == 'System Administrator'  )   &&   AND(  PRIORVALUE(Account_Present_In_OT__c)==false,  Account_Present_In_OT__c==true  )",
                        "&&   NOT(ISBLANK(Short_Name__c))",
                        &["Has_Valid_NDA__c == true,"],
                    ),
                    &["Account_OB_Send_NDA_Tech_Geo_to_OpenText"],
                ),
                rule(
                    "Account WF Send Tech Geo to OpenText",
                    false,
                    ALL,
                    Crit::FormulaParts(
                        "AND(NOT(Record_Type_Name__c = 'IBM Account'),     $Profile.Name != 'GF Integration',",
                        "NOT(ISBLANK(Short_Name__c)))",
                        &["ISCHANGED(Synch_to_Downstream__c)", "isnew()"],
                    ),
                    &["Account_OB_Send_NDA_Tech_Geo_to_OpenText"],
                ),
                rule(
                    "SendEmailOnAccountQualified",
                    true,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("Account.Stage__c", "equals", Some("Qualified")),
                            ("Account.Fab_9_10__c", "equals", Some("Yes")),
                        ],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "WFNotifyPortalAdminofAccountDeActivation",
                    true,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("Account.Stage__c", "equals", Some("Inactive")),
                            ("Account.Customer_Portal_Admin__c", "notEqual", None),
                        ],
                        None,
                    ),
                    &[],
                ),
            ],
            skipped: &[
                ("alerts", 8),
                ("fieldUpdates", 36),
                ("actions", 16),
                ("formula", 3),
            ],
            unsupported: &[
                (
                    "formula",
                    "Account - Outbound Message - To AIA",
                    "rule imported inactive: unsupported global $Setup.IntegrationUsers__c.Is_Integration_User__c at column 51",
                ),
                (
                    "formula",
                    "Account WF Send NDA Info to OpenText",
                    "rule imported inactive: unsupported global $Profile.Name at column 6",
                ),
                (
                    "formula",
                    "Account WF Send Tech Geo to OpenText",
                    "rule imported inactive: unsupported global $Profile.Name at column 51",
                ),
            ],
            time_triggers: &[],
        },
        FileExp {
            path: "SFDC/workflows/DRT__c.workflow",
            object: "DRT__c",
            actions: vec![
                action(
                    "DRT",
                    "https://legacy8.example.com/aianoauth/soa-infra/services/SF/MRSRevisedDRTService/MRSRevisedDRTService_client_ep",
                    Fields::Exact(&[
                        "DRT_Type__c",
                        "Id",
                        "Mask_Set_Title_Formula__c",
                        "Name",
                        "Old_Rev_DRT_Number__c",
                        "lastmodifieddate_sgt__c",
                    ]),
                    "29.0",
                    true,
                    "user58@example.com",
                    false,
                    None,
                ),
                action(
                    "DRT_OB_Sync_DRT_OracleDB",
                    "https://legacy8.example.com/aianoauth/soa-infra/services/SF/SFOracleDRTUpdate/SFOracleDRTUpdate_Client",
                    Fields::Exact(&[
                        "CreatedDate",
                        "Customer_Short_Name__c",
                        "Description__c",
                        "Id",
                        "Mask_Set_Title_Formula__c",
                        "Name",
                        "Status__c",
                        "Tech_Geo__c",
                        "Type__c",
                        "lastmodifieddate_sgt__c",
                    ]),
                    "30.0",
                    true,
                    "user58@example.com",
                    false,
                    None,
                ),
                action(
                    "DRT_Package_OB_Sync_OracleDB",
                    "https://legacy8.example.com/aianoauth/soa-infra/services/SF/SFOracleDRTFullPackage/SFOracleDRTFullPackage_Client",
                    Fields::Exact(&[
                        "DRT_Package_Sync__c",
                        "Id",
                        "Name",
                        "lastmodifieddate_sgt__c",
                    ]),
                    "30.0",
                    true,
                    "user58@example.com",
                    false,
                    None,
                ),
            ],
            rules: vec![
                rule(
                    "DRT Update Revised DRT Sync Trigger",
                    false,
                    TRIGGERING,
                    Crit::Formula(
                        "AND( DRT_Package_Sync__c ,  Synced_with_Oracle_DB__c , NOT( Trigger_Revised_DRT_Sync__c ),CONTAINS(LastModifiedBy.Profile.Name,'Integration'))  &&  Old_Rev_DRT__c != null",
                    ),
                    &[],
                ),
                rule(
                    "DRT_Out_Of_Sync",
                    true,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("DRT__c.DRT_Package_Sync__c", "equals", Some("False")),
                            ("DRT__c.Status__c", "equals", Some("Active")),
                        ],
                        None,
                    ),
                    // Its outbound message is time-dependent: not an immediate action.
                    &[],
                ),
                rule(
                    "DRT_Out_Of_Sync_2nd_step",
                    true,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("DRT__c.DRT_Package_Sync__c", "equals", Some("False")),
                            ("DRT__c.Status__c", "equals", Some("Active")),
                            ("DRT__c.Status__c", "equals", Some("Inactive")),
                            ("DRT__c.Trigger_2nd_drt_sync__c", "equals", Some("True")),
                        ],
                        Some("1 AND (2 OR 3) AND 4"),
                    ),
                    &[],
                ),
                rule(
                    "DRT_Package_WF_Sync_OracleDB",
                    true,
                    ALL,
                    Crit::Formula(
                        "OR(DRT_Package_Sync__c && ischanged(DRT_Package_Sync__c), Trigger_Oracle_DB_FullPackageSync_Manual__c)",
                    ),
                    &["DRT_Package_OB_Sync_OracleDB"],
                ),
                rule(
                    "DRT_Revise_Out_Of_Sync",
                    true,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("DRT__c.Sync_DRT_Rev_dot_NET__c", "equals", Some("False")),
                            ("DRT__c.Status__c", "equals", Some("Active")),
                            ("DRT__c.Old_Rev_DRT_Number__c", "notEqual", None),
                        ],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "DRT_WF_Sync_DRT_OracleDB",
                    false,
                    ALL,
                    Crit::FormulaParts(
                        "OR(  AND(  OR(ISPICKVAL( Status__c, 'Active'), ",
                        "ISPICKVAL(Status__c, 'Cancel') ), Trigger_Oracle_DB_Sync_Manual__c) )",
                        &[
                            "OR(NOT(CONTAINS(LastModifiedBy.Profile.Name,'Integration')), ischanged(Status__c))",
                        ],
                    ),
                    &["DRT_OB_Sync_DRT_OracleDB"],
                ),
                rule(
                    "WF_DRT_Sync_RevisedDRT",
                    true,
                    ALL,
                    // CRLF in the file: XML line-end normalization leaves LF.
                    Crit::FormulaParts(
                        "(      \n\tTrigger_Oracle_DB_ReviseSync_Manual__c  = true      \n\t&&       \n",
                        "\tNOT( ISNULL(Old_Rev_DRT_Number__c ) )      \n)",
                        &[
                            ")  \n||  \n(      \n",
                            "\tISPICKVAL(Status__c, \"Active\")      \n",
                            "\tISNEW()      \n",
                        ],
                    ),
                    &["DRT"],
                ),
            ],
            skipped: &[
                ("alerts", 2),
                ("fieldUpdates", 10),
                ("actions", 9),
                ("workflowTimeTriggers", 3),
                ("formula", 2),
            ],
            unsupported: &[
                (
                    "formula",
                    "DRT Update Revised DRT Sync Trigger",
                    "LastModifiedBy.Profile.Name: references through more than one lookup are not supported at column 100",
                ),
                (
                    "formula",
                    "DRT_WF_Sync_DRT_OracleDB",
                    "LastModifiedBy.Profile.Name: references through more than one lookup are not supported at column 165",
                ),
            ],
            time_triggers: &[
                "DRT_Out_Of_Sync",
                "DRT_Out_Of_Sync_2nd_step",
                "DRT_Revise_Out_Of_Sync",
            ],
        },
        FileExp {
            path: "SFDCRepo/workflows/Case.workflow",
            object: "Case",
            actions: vec![action(
                "SendSurvey",
                "http://legacy3.example.com",
                Fields::Exact(&["Id"]),
                "41.0",
                false,
                "user16@example.com",
                false,
                None,
            )],
            rules: vec![rule(
                "Case Closed",
                false,
                TRIGGERING,
                Crit::Items(&[("Case.IsClosed", "equals", Some("True"))], None),
                &["SendSurvey"],
            )],
            skipped: &[],
            unsupported: &[],
            time_triggers: &[],
        },
        FileExp {
            path: "Salesforce-Metadata/workflows/Lead.workflow",
            object: "Lead",
            actions: [
                "Nitro_Clevel_Contact",
                "Nitro_Discovery",
                "Nitro_Lead_Converted",
                "Nitro_Lead_Status",
                "Nitro_Task_Due_Date",
            ]
            .into_iter()
            .zip([
                "Executive level contacted",
                "Complete Discovery Questions",
                "Lead Converted",
                "Lead Status is moved from open to in progress",
                "Lead Source came from Tradeshow",
            ])
            .zip([
                "http://legacy6.example.com/n4sf/wom.php?action=Nitro_Clevel_Contact",
                "http://legacy6.example.com/n4sf/wom.php?action=Nitro_Discovery",
                "http://legacy6.example.com/n4sf/wom.php?action=Nitro_Lead_Converted",
                "http://legacy6.example.com/n4sf/wom.php?action=Nitro_Lead_Status",
                "http://legacy6.example.com/n4sf/wom.php?action=Nitro_Task_Due_Date",
            ])
            .map(|((name, description), endpoint)| {
                action(
                    name,
                    endpoint,
                    Fields::Exact(&["Id", "LastModifiedById"]),
                    "29.0",
                    true,
                    "user50@example.com",
                    false,
                    Some(description),
                )
            })
            .collect(),
            rules: vec![
                rule(
                    "Lead - Change Lead Status to open on Reactivation Date",
                    true,
                    TRIGGERING,
                    Crit::Items(&[("Lead.Status", "equals", Some("Incubated"))], None),
                    &[],
                ),
                rule(
                    "Lead - Change the Lead State to Assigned and Lead Status to Open when the Owner Changes",
                    false,
                    ALL,
                    Crit::Formula(
                        "IF( \t($Setup.Global_Config__c.Mute_Workflow_Rule__c==true) ,False,ISCHANGED( OwnerId ))",
                    ),
                    &[],
                ),
                rule(
                    "Lead - Date of Last Assignment",
                    false,
                    TRIGGERING,
                    Crit::Items(&[("Lead.Lead_State__c", "equals", Some("Assigned"))], None),
                    &[],
                ),
                rule(
                    "Lead - Email Notification Start DateTime",
                    true,
                    ALL,
                    Crit::Formula(
                        "OR(    AND(        ISCHANGED(OwnerId),        NOT(ISBLANK(First_Assignment_Date__c))       ),    AND(        ISBLANK(PRIORVALUE(First_Assignment_Date__c)),        NOT(ISBLANK(First_Assignment_Date__c))       )   )",
                    ),
                    &[],
                ),
                rule(
                    "Lead - Lead Acceptance Date",
                    true,
                    TRIGGERING,
                    Crit::Items(&[("Lead.Lead_State__c", "equals", Some("Accepted"))], None),
                    &[],
                ),
                rule(
                    "Lead - Lead Close Date",
                    true,
                    TRIGGERING,
                    Crit::Items(&[("Lead.Status", "equals", Some("Closed"))], None),
                    &[],
                ),
                rule(
                    "Lead - Lead assignment notificaton",
                    false,
                    TRIGGERING,
                    Crit::Formula(LEAD_ASSIGNMENT),
                    &[],
                ),
                rule(
                    "Lead - Lead assignment notificaton R7%2E0",
                    false,
                    TRIGGERING,
                    Crit::Formula(LEAD_ASSIGNMENT),
                    &[],
                ),
                rule(
                    "Lead - QueueAssignmentDateCapture",
                    true,
                    TRIGGERING,
                    Crit::Formula("BEGINS(OwnerId,'00G')"),
                    &[],
                ),
                rule(
                    "Lead - Retain Owner",
                    false,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("Lead.Status", "equals", Some("Closed")),
                            ("Lead.LeadSource", "equals", Some("List Import")),
                            ("Lead.RecordTypeId", "equals", Some("Unqualified Lead")),
                        ],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "Lead - Send Closed Leads to Queue",
                    false,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("Lead.Status", "equals", Some("Closed")),
                            ("Lead.LeadSource", "notEqual", Some("List Import")),
                            (
                                "Lead.RecordTypeId",
                                "equals",
                                Some("Qualified Lead,Unqualified Lead"),
                            ),
                        ],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "Lead - Send Rejected Leads to Queue",
                    true,
                    TRIGGERING,
                    Crit::Items(
                        &[("Lead.Lead_State__c", "equals", Some("Wrong Assignment"))],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "Lead - Send Unqualified Leads to Closed Queue",
                    false,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("Lead.Status", "equals", Some("Closed")),
                            ("Lead.LeadSource", "equals", Some("List Import")),
                            ("Lead.RecordTypeId", "equals", Some("Qualified Lead")),
                        ],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "Lead - To store the values of lead state",
                    false,
                    ALL,
                    Crit::Formula(
                        "IF( ($Setup.Global_Config__c.Mute_Workflow_Rule__c==true) ,False,   ISCHANGED(Lead_State__c))",
                    ),
                    &[],
                ),
                rule(
                    "Lead - To store the values of lead status",
                    false,
                    ALL,
                    Crit::Formula(
                        "IF( \t($Setup.Global_Config__c.Mute_Workflow_Rule__c==true) ,False,  ISCHANGED(Status))",
                    ),
                    &[],
                ),
                rule(
                    "Lead - Update by partner",
                    false,
                    ALL,
                    Crit::Formula("CONTAINS( UPPER($User.User_Type_Text__c ), 'PARTNER')"),
                    &[],
                ),
                rule(
                    "Lead - Urgent response required",
                    true,
                    TRIGGERING,
                    Crit::Items(
                        &[("Lead.Urgent_Response_Required__c", "equals", Some("True"))],
                        None,
                    ),
                    &[],
                ),
                rule(
                    "Nitro_Clevel_Contact",
                    false,
                    ALL,
                    Crit::Items(
                        &[
                            ("Lead.Title", "startsWith", Some("C")),
                            ("User.IsNitro__c", "equals", Some("True")),
                        ],
                        None,
                    ),
                    &["Nitro_Clevel_Contact"],
                ),
                rule(
                    "Nitro_Discovery",
                    false,
                    ALL,
                    Crit::Items(
                        &[
                            ("Lead.Budget__c", "notEqual", None),
                            ("Lead.Timeframe_to_Buy_1__c", "notEqual", None),
                            ("User.IsNitro__c", "equals", Some("True")),
                        ],
                        None,
                    ),
                    &["Nitro_Discovery"],
                ),
                rule(
                    "Nitro_Lead_Converted",
                    false,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("Lead.IsConverted", "equals", Some("True")),
                            ("User.IsNitro__c", "equals", Some("True")),
                        ],
                        None,
                    ),
                    &["Nitro_Lead_Converted"],
                ),
                rule(
                    "Nitro_Lead_Status",
                    false,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            ("Lead.Status", "greaterThan", Some("Open")),
                            ("User.IsNitro__c", "equals", Some("True")),
                        ],
                        None,
                    ),
                    &["Nitro_Lead_Status"],
                ),
                rule(
                    "Nitro_Task_Due_Date",
                    false,
                    TRIGGERING,
                    Crit::Items(
                        &[
                            (
                                "Lead.Lead_Source_Most_Recent__c",
                                "equals",
                                Some("Tradeshow/Live Event"),
                            ),
                            ("User.IsNitro__c", "equals", Some("True")),
                        ],
                        None,
                    ),
                    &["Nitro_Task_Due_Date"],
                ),
            ],
            skipped: &[
                ("alerts", 7),
                ("fieldUpdates", 20),
                ("actions", 15),
                ("workflowTimeTriggers", 5),
                ("formula", 6),
                ("criteriaItems", 8),
            ],
            unsupported: &[
                (
                    "formula",
                    "Lead - Change the Lead State to Assigned and Lead Status to Open when the Owner Changes",
                    "rule imported inactive: unsupported global $Setup.Global_Config__c.Mute_Workflow_Rule__c at column 7",
                ),
                (
                    "formula",
                    "Lead - Lead assignment notificaton",
                    "rule (inactive in the file) cannot be activated in casewire: unsupported global $Profile.Name at column 18",
                ),
                (
                    "formula",
                    "Lead - Lead assignment notificaton R7%2E0",
                    "rule imported inactive: unsupported global $Profile.Name at column 18",
                ),
                (
                    "criteriaItems",
                    "Lead - Retain Owner",
                    "criteria item 3 (Lead.RecordTypeId): \"Unqualified Lead\" is not a record id",
                ),
                (
                    "criteriaItems",
                    "Lead - Send Closed Leads to Queue",
                    "criteria item 3 (Lead.RecordTypeId): \"Qualified Lead\" is not a record id",
                ),
                (
                    "criteriaItems",
                    "Lead - Send Unqualified Leads to Closed Queue",
                    "criteria item 3 (Lead.RecordTypeId)",
                ),
                (
                    "formula",
                    "Lead - To store the values of lead state",
                    "$Setup.Global_Config__c.Mute_Workflow_Rule__c at column 6",
                ),
                (
                    "formula",
                    "Lead - To store the values of lead status",
                    "$Setup.Global_Config__c.Mute_Workflow_Rule__c at column 7",
                ),
                (
                    "formula",
                    "Lead - Update by partner",
                    "unsupported global $User.User_Type_Text__c at column 17",
                ),
                (
                    "criteriaItems",
                    "Nitro_Clevel_Contact",
                    "criteria item 2 (User.IsNitro__c): criteria on the current user's fields",
                ),
                (
                    "criteriaItems",
                    "Nitro_Discovery",
                    "criteria item 3 (User.IsNitro__c)",
                ),
                (
                    "criteriaItems",
                    "Nitro_Lead_Converted",
                    "criteria item 2 (User.IsNitro__c)",
                ),
                (
                    "criteriaItems",
                    "Nitro_Lead_Status",
                    "criteria item 1 (Lead.Status): ordering a picklist",
                ),
                (
                    "criteriaItems",
                    "Nitro_Task_Due_Date",
                    "criteria item 2 (User.IsNitro__c)",
                ),
            ],
            time_triggers: &[
                "Lead - Change Lead Status to open on Reactivation Date",
                "Lead - Lead assignment notificaton",
                "Lead - Lead assignment notificaton",
                "Lead - Lead assignment notificaton R7%2E0",
                "Lead - Lead assignment notificaton R7%2E0",
            ],
        },
        FileExp {
            path: "index-8321334732/workflows/Asset__c.workflow-meta.xml",
            object: "Asset__c",
            actions: vec![action(
                "MessageAction",
                "https://legacy11.example.com/",
                Fields::Exact(&["Asset_Available__c", "Asset_Type__c", "Id", "Lead__c"]),
                "57.0",
                false,
                "user63@example.com",
                false,
                None,
            )],
            rules: vec![rule(
                "Rule1",
                true,
                CREATE,
                Crit::Items(
                    &[("Asset__c.Asset_Type__c", "equals", Some("Fix Deposit"))],
                    None,
                ),
                &["MessageAction"],
            )],
            skipped: &[
                ("alerts", 1),
                ("fieldUpdates", 1),
                ("tasks", 1),
                ("actions", 2),
            ],
            unsupported: &[],
            time_triggers: &[],
        },
        FileExp {
            path: "org2org/workflows/Case.workflow",
            object: "Case",
            actions: vec![
                action(
                    "Medical_Records_Request",
                    ZPAPER,
                    Fields::Exact(&["Id", "ZPAPER__outboundFaxTemplate__c"]),
                    "48.0",
                    false,
                    "user17@example.com",
                    false,
                    Some("This is an outbound template message for a medical records request."),
                ),
                action(
                    "Missing_Information",
                    ZPAPER,
                    Fields::Exact(&["Id", "ZPAPER__outboundFaxTemplate__c"]),
                    "48.0",
                    false,
                    "user17@example.com",
                    false,
                    Some("This is an outbound template message for missing information."),
                ),
                action(
                    "New_Outbound_PA_Message",
                    ZPAPER,
                    Fields::Exact(&["Id", "ZPAPER__outboundFaxTemplate__c"]),
                    "45.0",
                    false,
                    "user17@example.com",
                    false,
                    Some("This is an outbound template message for Prior Authorization"),
                ),
                action(
                    "New_Outbound_Template_Message",
                    ZPAPER,
                    Fields::Exact(&["Id", "ZPAPER__outboundFaxTemplate__c"]),
                    "41.0",
                    false,
                    "user17@example.com",
                    false,
                    Some("This is an outbound template message for Enrollment form"),
                ),
                action(
                    "Physician_Order",
                    ZPAPER,
                    Fields::Exact(&["Id", "ZPAPER__outboundFaxTemplate__c"]),
                    "48.0",
                    false,
                    "user17@example.com",
                    false,
                    Some("This is an outbound template message for a physician order."),
                ),
            ],
            rules: vec![
                rule(
                    "Sending Outbound Acknowledgement Template",
                    true,
                    TRIGGERING,
                    Crit::Items(&[("Case.Status", "equals", Some("Working"))], None),
                    &["New_Outbound_Template_Message"],
                ),
                rule(
                    "Sending Outbound Medical Record Request Template",
                    true,
                    TRIGGERING,
                    Crit::Items(
                        &[("Case.Status", "equals", Some("Medical Records Request"))],
                        None,
                    ),
                    &["Medical_Records_Request"],
                ),
                rule(
                    "Sending Outbound Missing Information Template",
                    true,
                    TRIGGERING,
                    Crit::Items(
                        &[("Case.Status", "equals", Some("Missing Information"))],
                        None,
                    ),
                    &["Missing_Information"],
                ),
                rule(
                    "Sending Outbound Physician Order Template",
                    true,
                    TRIGGERING,
                    Crit::Items(&[("Case.Status", "equals", Some("Authorized"))], None),
                    &["Physician_Order"],
                ),
            ],
            skipped: &[("fieldUpdates", 5), ("actions", 5)],
            unsupported: &[],
            time_triggers: &[],
        },
        FileExp {
            path: "org2org/workflows/Order.workflow",
            object: "Order",
            actions: vec![action(
                "SendOrderFax",
                "https://legacy10.example.com/services/OutboundMessageService",
                Fields::Exact(&["Id", "outboundFaxTemplate__c"]),
                "49.0",
                true,
                "user61@example.com",
                false,
                None,
            )],
            rules: vec![rule(
                "Send Order Received Form",
                false,
                TRIGGERING,
                Crit::FormulaParts(
                    "AND(\nISPICKVAL(Source__c, \"Fax\"),\nNOT(\nISBLANK(Account.Ordering_Provider__r.Fax)\n),\n",
                    "INCLUDES(Account.Ordering_Provider__r.Fax_Opt_Out__c , \"All\")\n)\n)",
                    &[
                        "ISBLANK(Account.PersonContact.Birth_Date__c)",
                        "\"Order Confirmation\"",
                    ],
                ),
                &["SendOrderFax"],
            )],
            skipped: &[("fieldUpdates", 1), ("actions", 1), ("formula", 1)],
            unsupported: &[(
                "formula",
                "Send Order Received Form",
                "rule (inactive in the file) cannot be activated in casewire: Account.Ordering_Provider__r.Fax: references through more than one lookup are not supported at line 4, column 9",
            )],
            time_triggers: &[],
        },
        FileExp {
            path: "playground17/workflows/Class__c.workflow",
            object: "Class__c",
            actions: vec![action(
                "ClassOutboundMessage",
                "https://legacy5.example.com/ProductTrainingWs/soap/v1/",
                Fields::Exact(&["Id", "Source_Table__c"]),
                "38.0",
                true,
                "user48@example.com",
                true,
                None,
            )],
            rules: vec![
                rule(
                    "ClassOutboundMessageRule",
                    true,
                    ALL,
                    Crit::FormulaParts(
                        "AND( \tISPICKVAL(Class_Type__c, 'Public') \t,OR( \t   AND(  \t\t   ISNEW() \t\t  , ISPICKVAL(Status__c , 'Active') \t\t   ) ",
                        ", Send_to_TDS__c = TRUE  \t) )",
                        &["ISCHANGED( Guaranteed_to_Run__c )", "ISCHANGED(Name)"],
                    ),
                    &["ClassOutboundMessage"],
                ),
                rule(
                    "Customer Training New Class has been activated",
                    true,
                    ALL,
                    Crit::Formula(
                        "AND(     OR      (        ISPICKVAL(Class_Format__c,'Instructor Led Classroom')      , ISPICKVAL(Class_Format__c,'Instructor Led Online')      )  ,  ISPICKVAL(Status__c, 'Active')  ,  ISPICKVAL( Class_Type__c , 'Onsite')  ,  OR( ISNEW()  ,  ISCHANGED(Status__c) ) )",
                    ),
                    &[],
                ),
                rule(
                    "Send Training Survey Link to Instructors",
                    true,
                    TRIGGERING,
                    Crit::Formula(
                        "AND( OR( ISPICKVAL(Class_Format__c , \"Instructor Led Classroom\") ,ISPICKVAL(Class_Format__c , \"Instructor Led Online\") ) , ISPICKVAL(Status__c, \"Active\") ,NOT(ISBLANK(Primary_Instructor__c )) , (Start_Date__c -2) > TODAY() )",
                    ),
                    &[],
                ),
                rule(
                    "Set Class GTR Flag to True",
                    true,
                    ALL,
                    Crit::FormulaParts(
                        "AND( \tNOT(Guaranteed_to_Run__c) \t,ISPICKVAL(Status__c,\"Active\") \t,OR( \t\tISNEW() ",
                        "\t\t\t\t,Total_Seats_Taken__c >= 5\t\t\t\t \t\t\t)\t \t\t) \t) )",
                        &["Location_Type__c = \"Corporate Training Center\""],
                    ),
                    &[],
                ),
                rule(
                    "Set Class Start and End Date",
                    true,
                    ALL,
                    Crit::Items(&[("Class__c.Exam_Date__c", "notEqual", None)], None),
                    &[],
                ),
            ],
            skipped: &[
                ("alerts", 3),
                ("fieldUpdates", 4),
                ("actions", 5),
                ("workflowTimeTriggers", 1),
            ],
            unsupported: &[],
            time_triggers: &["Send Training Survey Link to Instructors"],
        },
    ]
}

fn workflow_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::from(METADATA)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(METADATA)
        .expect("under metadata")
        .to_string_lossy()
        .replace('\\', "/")
}

fn import(path: &Path) -> ImportedWorkflow {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name");
    let object = object_for_file(name).unwrap_or_else(|| panic!("{name} is not a workflow file"));
    let xml = std::fs::read_to_string(path).expect("readable");
    import_workflow(object, &xml).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_file(exp: &FileExp, got: &ImportedWorkflow) {
    let file = exp.path;
    assert_eq!(got.object, exp.object, "{file}");

    let names: Vec<&str> = got.actions.iter().map(|a| a.name.as_str()).collect();
    let want: Vec<&str> = exp.actions.iter().map(|a| a.name).collect();
    assert_eq!(names, want, "{file}: actions");
    for (a, e) in got.actions.iter().zip(&exp.actions) {
        let what = format!("{file}: action {}", e.name);
        assert_eq!(a.object, exp.object, "{what}");
        assert_eq!(a.endpoint_url, e.endpoint, "{what}");
        assert_eq!(a.api_version, e.api, "{what}");
        assert_eq!(a.include_session_id, e.session, "{what}");
        assert_eq!(a.integration_user.as_deref(), Some(e.user), "{what}");
        assert_eq!(a.use_dead_letter_queue, e.dead_letter, "{what}");
        assert_eq!(a.description.as_deref(), e.description, "{what}");
        assert_eq!(a.payload_mode, model::PayloadMode::Latest, "{what}");
        assert_eq!(a.id.key_prefix(), "04k", "{what}");
        assert!(a.id.has_valid_checksum(), "{what}");
        // The same id an action of that name defined in configuration gets.
        let seed = format!("{}.{}", exp.object, e.name);
        assert_eq!(a.id, model::SfId::derived("04k", &seed), "{what}");
        match e.fields {
            Fields::Exact(fields) => assert_eq!(a.fields, fields, "{what}"),
            Fields::Summary(count, first, last) => {
                assert_eq!(a.fields.len(), count, "{what}");
                assert_eq!(a.fields.first().map(String::as_str), Some(first), "{what}");
                assert_eq!(a.fields.last().map(String::as_str), Some(last), "{what}");
            }
        }
    }

    let names: Vec<&str> = got.rules.iter().map(|r| r.name.as_str()).collect();
    let want: Vec<&str> = exp.rules.iter().map(|r| r.name).collect();
    assert_eq!(names, want, "{file}: rules");
    for (r, e) in got.rules.iter().zip(&exp.rules) {
        let what = format!("{file}: rule {}", e.name);
        assert_eq!(r.object, exp.object, "{what}");
        assert_eq!(r.active, e.active, "{what}");
        assert_eq!(r.trigger, e.trigger, "{what}");
        assert_eq!(r.actions, e.actions, "{what}");
        match (&r.criteria, &e.criteria) {
            (
                Criteria::Items {
                    items,
                    boolean_filter,
                },
                Crit::Items(want, filter),
            ) => {
                let got: Vec<(&str, &str, Option<&str>)> = items
                    .iter()
                    .map(|i| (i.field.as_str(), i.operation.as_str(), i.value.as_deref()))
                    .collect();
                assert_eq!(got, *want, "{what}");
                assert_eq!(boolean_filter.as_deref(), *filter, "{what}");
            }
            (Criteria::Formula(f), Crit::Formula(want)) => assert_eq!(f, want, "{what}"),
            (Criteria::Formula(f), Crit::FormulaParts(start, end, parts)) => {
                assert!(f.starts_with(start), "{what}: {f:?}");
                assert!(f.ends_with(end), "{what}: {f:?}");
                for part in *parts {
                    assert!(f.contains(part), "{what}: {part:?} in {f:?}");
                }
                assert!(
                    !f.contains('\r') && !f.contains("&quot;") && !f.contains("&amp;"),
                    "{what}"
                );
            }
            (got, _) => panic!("{what}: criteria {got:?}"),
        }
    }

    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &got.skipped {
        *kinds.entry(s.kind.as_str()).or_default() += 1;
    }
    let want: BTreeMap<&str, usize> = exp.skipped.iter().copied().collect();
    assert_eq!(kinds, want, "{file}: skipped kinds");

    let unsupported: Vec<(&str, &str, &str)> = got
        .skipped
        .iter()
        .filter(|s| s.kind == "formula" || s.kind == "criteriaItems")
        .map(|s| (s.kind.as_str(), s.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        unsupported.len(),
        exp.unsupported.len(),
        "{file}: {unsupported:#?}"
    );
    for ((kind, name, reason), (want_kind, want_name, fragment)) in
        unsupported.iter().zip(exp.unsupported)
    {
        assert_eq!((*kind, *name), (*want_kind, *want_name), "{file}");
        assert!(reason.contains(fragment), "{file}: {name}: {reason}");
    }
    let timed: Vec<&str> = got
        .skipped
        .iter()
        .filter(|s| s.kind == "workflowTimeTriggers")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(timed, exp.time_triggers, "{file}: time triggers");
    // A deactivated rule always says why.
    for r in got.rules.iter().filter(|r| !r.active) {
        let file_says_active = exp
            .unsupported
            .iter()
            .any(|(_, n, f)| *n == r.name && f.contains("imported inactive"));
        if file_says_active {
            assert!(
                got.skipped
                    .iter()
                    .any(|s| s.name == r.name && s.reason.starts_with("rule imported inactive"))
            );
        }
    }
}

#[test]
fn every_metadata_file_imports_as_read() {
    let files = workflow_files();
    let expectations = expectations();
    let covered: Vec<String> = files.iter().map(|p| relative(p)).collect();
    let mut expected: Vec<String> = expectations.iter().map(|e| e.path.to_owned()).collect();
    expected.sort();
    assert_eq!(
        covered, expected,
        "every file under metadata/ needs expectations"
    );
    for exp in &expectations {
        let path = Path::new(METADATA).join(exp.path);
        check_file(exp, &import(&path));
    }
}

#[test]
fn re_import_is_identical() {
    for path in workflow_files() {
        assert_eq!(import(&path), import(&path), "{}", path.display());
    }
}

#[test]
fn imported_rules_compile_against_the_permissive_schema() {
    for path in workflow_files() {
        let imported = import(&path);
        let schema = schema_for_import(&imported.object, &imported);
        for rule in &imported.rules {
            let compiled =
                compile(rule, &schema).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // Exactly the rules reported as unsupported keep an error.
            let reported = imported
                .skipped
                .iter()
                .any(|s| s.name == rule.name && (s.kind == "formula" || s.kind == "criteriaItems"));
            assert_eq!(
                compiled.error().is_some(),
                reported,
                "{}: {}",
                path.display(),
                rule.name
            );
        }
    }
}

#[test]
fn every_action_named_by_a_rule_is_defined_and_ids_are_unique() {
    let mut ids = Vec::new();
    for path in workflow_files() {
        let imported = import(&path);
        for rule in &imported.rules {
            for action in &rule.actions {
                assert!(
                    imported.actions.iter().any(|a| &a.name == action),
                    "{}: {action}",
                    path.display()
                );
            }
        }
        ids.extend(imported.actions.iter().map(|a| a.id.clone()));
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);
    assert_eq!(count, 20);
}
